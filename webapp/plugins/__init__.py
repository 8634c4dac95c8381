"""Plugin imports: sources that push events (Shopify, WooCommerce, the tracking API and the
browser snippet), their keys, the receivers that store events, and their processing."""
