// Click a header of a table.sortable to sort its rows; click again to reverse. Numbers sort
// numerically (a cell's data-value, else its text), missing values ("-") last.
document.querySelectorAll("table.sortable").forEach((table) => {
  const headers = Array.from(table.tHead.rows[0].cells);
  headers.forEach((header, column) => {
    header.addEventListener("click", () => {
      const ascending = header.dataset.order !== "asc";
      headers.forEach((other) => delete other.dataset.order);
      header.dataset.order = ascending ? "asc" : "desc";
      const value = (row) => {
        const cell = row.cells[column];
        const text = (cell.dataset.value ?? cell.textContent).trim();
        const number = parseFloat(text);
        return Number.isNaN(number) ? text.toLowerCase() : number;
      };
      const body = table.tBodies[0];
      const rows = Array.from(body.rows);
      rows.sort((first, second) => {
        const a = value(first), b = value(second);
        if (typeof a !== typeof b) return typeof a === "number" ? -1 : 1;
        const order = a < b ? -1 : a > b ? 1 : 0;
        return ascending ? order : -order;
      });
      rows.forEach((row) => body.appendChild(row));
    });
  });
});
