// Below 1,440 px book.css hides the page's table of contents column; the article header's list button then
// opens it as the theme's own pop-up (pydata-sphinx-theme binds that pop-up to the first ".secondary-toggle"
// on the page, the navbar's, which sphinx-book-theme hides; this forwards the visible button's click to it).
document.addEventListener("DOMContentLoaded", () => {
  const [themeToggle, articleToggle] = document.querySelectorAll(".secondary-toggle");
  if (themeToggle && articleToggle) {
    articleToggle.addEventListener("click", (event) => {
      if (window.matchMedia("(min-width: 960px) and (max-width: 1439.98px)").matches) {
        event.preventDefault();
        themeToggle.click();
      }
    });
  }
});
