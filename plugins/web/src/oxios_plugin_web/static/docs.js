// Renders /openapi.json as a readable list of endpoints (no external assets).
"use strict";

function el(tag, cls, ...children) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c ?? "")));
  return node;
}

function resolve(doc, schema, depth = 0) {
  if (!schema || depth > 4) return schema;
  if (schema.$ref) return resolve(doc, doc.components.schemas[schema.$ref.split("/").pop()], depth + 1);
  return schema;
}

function schemaText(doc, schema) {
  const s = resolve(doc, schema);
  if (!s) return "";
  const copy = JSON.parse(JSON.stringify(s));
  return JSON.stringify(copy, null, 2);
}

fetch("/openapi.json").then((r) => r.json()).then((doc) => {
  document.getElementById("intro").textContent = doc.info.description;
  const byTag = new Map();
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const tag = (op.tags || ["other"])[0];
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push([method, path, op]);
    }
  }
  const root = document.getElementById("endpoints");
  for (const [tag, ops] of byTag) {
    root.append(el("h2", "", tag));
    for (const [method, path, op] of ops) {
      const details = el("details", "op");
      details.append(el("summary", "", el("span", "method m-" + method, method.toUpperCase()), el("span", "path", path), el("span", "sum", op.summary || "")));
      const body = el("div", "detail");
      if (op.description) body.append(el("p", "", op.description));
      for (const p of op.parameters || []) body.append(el("div", "hint", `${p.in} ${p.name}${p.required ? " (required)" : ""}: ${p.description || p.schema.type}`));
      const req = op.requestBody && Object.values(op.requestBody.content)[0];
      if (req) body.append(el("h4", "", "Request body"), el("pre", "", schemaText(doc, req.schema)));
      for (const [status, res] of Object.entries(op.responses)) {
        const content = res.content && Object.values(res.content)[0];
        body.append(el("div", "hint", `${status}: ${res.description}`));
        if (content && status.startsWith("2")) body.append(el("pre", "", schemaText(doc, content.schema)));
      }
      details.append(body);
      root.append(details);
    }
  }
});
