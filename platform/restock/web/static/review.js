// The review page works without this file; it only asks before sending an order and keeps a
// slow approval from being clicked twice.
document.addEventListener("submit", function (event) {
  var form = event.target;
  var question = form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
    return;
  }
  form.querySelectorAll("button[type=submit]").forEach(function (button) {
    window.setTimeout(function () { button.disabled = true; }, 0);
  });
});
