/* Demo shop: a cart in localStorage, and the events a shop's pages emit. */
(function () {
  "use strict";
  function call(method) {
    var args = Array.prototype.slice.call(arguments, 1);
    window.tributary = window.tributary || [];
    if (window.tributary.__tributary) window.tributary[method].apply(null, args);
    else window.tributary.push([method].concat(args));
  }
  function cart() { try { return JSON.parse(localStorage.getItem("demo_cart") || "[]"); } catch (e) { return []; } }
  function save(lines) { localStorage.setItem("demo_cart", JSON.stringify(lines)); }
  function total(lines) { return lines.reduce(function (s, l) { return s + l.price * l.quantity; }, 0); }
  function products(lines) {
    return lines.map(function (l) { return { product_id: l.product_id, sku: l.sku, name: l.name, price: l.price, quantity: l.quantity }; });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var product = document.querySelector("[data-product]");
    if (product) {
      var p = JSON.parse(product.getAttribute("data-product"));
      call("track", "Product Viewed", { product_id: p.product_id, sku: p.sku, name: p.name, price: p.price, currency: "EUR", category: p.category });
      document.getElementById("add-to-cart").addEventListener("click", function () {
        var lines = cart(), line = lines.filter(function (l) { return l.product_id === p.product_id; })[0];
        if (line) line.quantity += 1; else lines.push({ product_id: p.product_id, sku: p.sku, name: p.name, price: p.price, quantity: 1 });
        save(lines);
        call("track", "Product Added", { product_id: p.product_id, sku: p.sku, name: p.name, price: p.price, quantity: 1, currency: "EUR", cart_total: total(lines) });
        document.getElementById("added").textContent = p.name + " is in your cart (" + lines.reduce(function (s, l) { return s + l.quantity; }, 0) + " items).";
      });
    }
    var list = document.getElementById("cart-lines");
    if (list) {
      var lines = cart();
      lines.forEach(function (l) {
        var li = document.createElement("li");
        li.textContent = l.quantity + " × " + l.name + " — " + (l.price * l.quantity).toFixed(2) + " EUR";
        list.appendChild(li);
      });
      document.getElementById("cart-total").textContent = total(lines).toFixed(2) + " EUR";
      document.getElementById("checkout").hidden = !lines.length;
      call("track", "Cart Viewed", { products: products(lines), value: total(lines), currency: "EUR" });
      document.getElementById("checkout").addEventListener("submit", function () {
        var email = document.getElementById("checkout-email").value.trim();
        document.getElementById("checkout-lines").value = JSON.stringify(products(cart()));
        var aid = window.tributary && window.tributary.anonymousId && window.tributary.anonymousId();
        document.getElementById("checkout-aid").value = aid || "";
        call("track", "Checkout Started", { products: products(cart()), value: total(cart()), currency: "EUR" });
        if (email) call("identify", email);
        call("flush");
      });
    }
    if (document.getElementById("order-placed")) localStorage.removeItem("demo_cart");
  });
})();
