// lobbyd consoles' shared DOM helper, loaded before each page's own script
// (web/static/app.js, web/admin/admin.js) as common/dom.js: plain
// JavaScript, no build step, no dependencies.
'use strict';

window.lobbyd = Object.freeze({
  // str is v as text, '' for null and undefined.
  str: (v) => (v == null ? '' : String(v)),

  // truncate cuts s to n characters, the last an ellipsis.
  truncate: (s, n) => (s.length <= n ? s : `${s.slice(0, n - 1)}…`),

  // el builds an element. Children that are strings become text nodes and
  // the "text" prop sets textContent, so data is never interpreted as markup.
  el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value == null || value === false) continue;
      if (key === 'class') node.className = value;
      else if (key === 'text') node.textContent = String(value);
      else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
      else if (key.startsWith('aria-') || key.startsWith('data-')) node.setAttribute(key, value === true ? '' : String(value));
      else node[key] = value;
    }
    for (const child of children.flat(Infinity)) {
      if (child != null && child !== false) node.append(child);
    }
    return node;
  },
});
