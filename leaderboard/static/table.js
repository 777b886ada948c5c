// The ranking table: filter its rows by the selects of form#filters, show or hide its extra
// columns, and show a badge's reason on click (hover shows it as the title).
const table = document.getElementById("leaderboard");
const filters = document.getElementById("filters");
if (table && filters) {
  const selects = Array.from(filters.querySelectorAll("select[data-filter]"));
  const shown = document.getElementById("shown");
  const apply = () => {
    let count = 0;
    Array.from(table.tBodies[0].rows).forEach((row) => {
      const keep = selects.every((select) => !select.value || row.dataset[select.dataset.filter] === select.value);
      row.hidden = !keep;
      count += keep ? 1 : 0;
    });
    shown.textContent = `${count} of ${table.tBodies[0].rows.length} models`;
  };
  selects.forEach((select) => select.addEventListener("change", apply));
  const more = document.getElementById("more-columns");
  more.addEventListener("change", () => table.classList.toggle("all-columns", more.checked));
  apply();
}
document.querySelectorAll("button.badge").forEach((badge) => {
  badge.addEventListener("click", () => {
    const reason = badge.nextElementSibling;
    reason.hidden = !reason.hidden;
    badge.setAttribute("aria-expanded", String(!reason.hidden));
  });
});
