/* A <select data-submit> sends its form as soon as another choice is made. */
document.addEventListener("change", (event) => {
  "use strict";
  const target = event.target;
  if (target.matches && target.matches("select[data-submit]")) target.form.submit();
});
