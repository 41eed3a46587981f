// Structured data for every element matching a selector (tables as rows, forms as values).
([selector, limit]) => {
  const out = [];
  for (const el of [...document.querySelectorAll(selector)].slice(0, limit)) {
    const item = { tag: el.tagName.toLowerCase(), text: (el.innerText || el.textContent || "").trim().slice(0, 4000), attributes: {} };
    for (const attr of el.attributes) item.attributes[attr.name] = attr.value.slice(0, 1000);
    if (el.href) item.href = el.href;
    if (el.src) item.src = el.src;
    if ("value" in el && el.tagName !== "LI" && el.tagName !== "BUTTON") item.value = el.value;
    if (el.tagName === "TABLE") item.rows = [...el.rows].map((r) => [...r.cells].map((c) => c.innerText.trim()));
    if (el.tagName === "SELECT") item.options = [...el.options].map((o) => ({ value: o.value, text: o.text, selected: o.selected }));
    if (el.tagName === "FORM") item.fields = [...el.elements].map((f) => ({ name: f.name, type: f.type, value: f.value }));
    out.push(item);
  }
  return out;
}
