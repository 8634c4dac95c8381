"""E-commerce: shops, products, orders, carts, recommendations, segments and automations."""
