// Turn the current document into readable Markdown plus a list of links.
// Runs inside the page (page.evaluate); returns {title, url, markdown, links}.
() => {
  const SKIP = new Set(["SCRIPT", "STYLE", "NOSCRIPT", "TEMPLATE", "SVG", "CANVAS", "IFRAME", "HEAD"]);
  const CHROME = new Set(["NAV", "FOOTER", "ASIDE"]);
  const links = [];
  const linkIndex = new Map();
  const root = document.querySelector("main, article, [role=main]") || document.body || document.documentElement;
  const clean = (s) => s.replace(/\s+/g, " ");
  function visible(el) {
    const st = window.getComputedStyle(el);
    return st.display !== "none" && st.visibility !== "hidden" && !el.hidden;
  }
  function linkRef(a) {
    const href = a.href;
    if (!href || href.startsWith("javascript:")) return null;
    if (!linkIndex.has(href)) {
      links.push({ text: clean(a.innerText || a.title || "").trim().slice(0, 200), href });
      linkIndex.set(href, links.length);
    }
    return linkIndex.get(href);
  }
  function inline(node) {
    let out = "";
    for (const child of node.childNodes) {
      if (child.nodeType === Node.TEXT_NODE) { out += clean(child.textContent); continue; }
      if (child.nodeType !== Node.ELEMENT_NODE || SKIP.has(child.tagName) || !visible(child)) continue;
      const tag = child.tagName;
      if (tag === "A") {
        const text = inline(child).trim();
        const n = linkRef(child);
        out += n ? `[${text}][${n}]` : text;
      } else if (tag === "STRONG" || tag === "B") out += `**${inline(child).trim()}**`;
      else if (tag === "EM" || tag === "I") out += `*${inline(child).trim()}*`;
      else if (tag === "CODE") out += "`" + child.innerText + "`";
      else if (tag === "BR") out += "\n";
      else if (tag === "IMG") out += child.alt ? `![${clean(child.alt)}]` : "";
      else if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT") {
        const name = child.name || child.id || "";
        out += ` [${tag.toLowerCase()}${child.type ? " " + child.type : ""}${name ? " name=" + name : ""}] `;
      } else out += inline(child);
    }
    return out;
  }
  const blocks = [];
  function block(node, depth) {
    for (const child of node.children) {
      if (SKIP.has(child.tagName) || !visible(child)) continue;
      const tag = child.tagName;
      if (CHROME.has(tag) && root === document.body) continue;
      const h = /^H([1-6])$/.exec(tag);
      if (h) { blocks.push("#".repeat(+h[1]) + " " + inline(child).trim()); continue; }
      if (tag === "P" || tag === "BLOCKQUOTE" || tag === "FIGCAPTION" || tag === "LABEL" || tag === "BUTTON") {
        const text = inline(child).trim();
        if (text) blocks.push(tag === "BLOCKQUOTE" ? "> " + text : text);
        continue;
      }
      if (tag === "PRE") { blocks.push("```\n" + child.innerText.replace(/\n$/, "") + "\n```"); continue; }
      if (tag === "UL" || tag === "OL") {
        let i = 1;
        const items = [];
        for (const li of child.children) {
          if (li.tagName !== "LI" || !visible(li)) continue;
          items.push("  ".repeat(depth) + (tag === "OL" ? `${i++}. ` : "- ") + inline(li).trim());
        }
        if (items.length) blocks.push(items.join("\n"));
        continue;
      }
      if (tag === "TABLE") {
        const rows = [...child.rows].map((r) => "| " + [...r.cells].map((c) => inline(c).trim().replace(/\|/g, "\\|")).join(" | ") + " |");
        if (rows.length) {
          const width = child.rows[0].cells.length;
          rows.splice(1, 0, "|" + " --- |".repeat(width));
          blocks.push(rows.join("\n"));
        }
        continue;
      }
      if (child.children.length === 0) {
        const text = inline(child).trim();
        if (text) blocks.push(text);
        continue;
      }
      // A container: text directly inside it counts as a paragraph of its own.
      const own = [...child.childNodes].filter((n) => n.nodeType === Node.TEXT_NODE).map((n) => n.textContent).join(" ").trim();
      if (own) blocks.push(inline(child).trim());
      else block(child, depth);
    }
  }
  block(root, 0);
  return {
    title: document.title || "",
    url: location.href,
    markdown: blocks.filter(Boolean).join("\n\n").replace(/\n{3,}/g, "\n\n"),
    links,
  };
}
