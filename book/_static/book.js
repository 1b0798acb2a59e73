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

// Display equations up to 15% wider than their column are set smaller, so that they fit without a scrollbar; wider
// ones scroll inside their block (book.css). Measured after MathJax has typeset the page, again when it is resized.
const EQUATION_SHRINK_LIMIT = 0.85;

function fitDisplayEquations() {
  for (const equation of document.querySelectorAll('mjx-container[jax="CHTML"][display="true"]')) {
    if (equation.dataset.typesetFontSize === undefined) {
      equation.dataset.typesetFontSize = equation.style.fontSize; // the size MathJax chose
    }
    equation.style.fontSize = equation.dataset.typesetFontSize;
    const ratio = equation.clientWidth / equation.scrollWidth;
    if (ratio < 1 && ratio >= EQUATION_SHRINK_LIMIT) {
      const size = parseFloat(getComputedStyle(equation).fontSize);
      equation.style.fontSize = `${Math.floor(size * ratio * 0.98 * 100) / 100}px`;
    }
  }
}

window.addEventListener("load", () => {
  const startup = window.MathJax && MathJax.startup && MathJax.startup.promise;
  if (!startup) return;
  startup.then(fitDisplayEquations);
  let pending = null;
  window.addEventListener("resize", () => {
    clearTimeout(pending);
    pending = setTimeout(fitDisplayEquations, 150);
  });
});
