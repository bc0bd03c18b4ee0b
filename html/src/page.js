// Sorting by a column and filtering by name, for every table of the page.
"use strict";
for (const table of document.querySelectorAll("table.sortable")) {
  const body = table.tBodies[0];
  table.querySelectorAll("th").forEach((th, column) => {
    th.addEventListener("click", () => {
      const numeric = th.dataset.sort === "num";
      const descending = !th.classList.contains("desc");
      table.querySelectorAll("th").forEach((h) => h.classList.remove("asc", "desc"));
      th.classList.add(descending ? "desc" : "asc");
      const key = (row) => {
        const cell = row.cells[column];
        return numeric ? Number(cell.dataset.value) : cell.textContent;
      };
      const rows = Array.from(body.rows);
      rows.sort((a, b) => {
        const [x, y] = [key(a), key(b)];
        const order = numeric ? x - y : x.localeCompare(y);
        return descending ? -order : order;
      });
      body.append(...rows);
    });
  });
}
for (const input of document.querySelectorAll("input.filter")) {
  const table = input.nextElementSibling;
  input.addEventListener("input", () => {
    const wanted = input.value.toLowerCase();
    for (const row of table.tBodies[0].rows) {
      row.classList.toggle("hidden", !row.cells[0].textContent.toLowerCase().includes(wanted));
    }
  });
}
