/* The Northwind catalogue (fixed, so every episode sees the same shop). */
window.PRODUCTS = [
  { id: "aurora-lamp", name: "Aurora Desk Lamp", price: 39.0, color: "#f2c14e",
    text: "A slim LED desk lamp with three brightness levels and a flexible neck." },
  { id: "nimbus-lamp", name: "Nimbus Floor Lamp", price: 89.0, color: "#9ec1e8",
    text: "A tall floor lamp with a soft fabric shade for living rooms." },
  { id: "harbor-mug", name: "Harbor Ceramic Mug", price: 12.5, color: "#5b8c85",
    text: "A 350 ml stoneware mug, dishwasher safe." },
  { id: "summit-chair", name: "Summit Office Chair", price: 219.0, color: "#4d5466",
    text: "An ergonomic chair with lumbar support and adjustable arms." },
  { id: "atlas-notebook", name: "Atlas Notebook", price: 8.0, color: "#c8553d",
    text: "A dotted A5 notebook with 160 pages." },
  { id: "breeze-fan", name: "Breeze Desk Fan", price: 29.0, color: "#8fb996",
    text: "A quiet USB fan with two speeds." }
];
window.productById = function (id) { return PRODUCTS.filter(function (p) { return p.id === id; })[0]; };
window.showCartCount = function () {
  webapp.load().then(function (state) {
    var cart = state.cart || {}, n = 0;
    Object.keys(cart).forEach(function (k) { n += Number(cart[k]) || 0; });
    var el = document.getElementById("cart-link");
    if (el) el.textContent = "Cart (" + n + ")";
  });
};
