// Overlapping or cut-off text on the page as drawn: every visible text node's box, checked
// against the window, against boxes that hide overflow without scrolling, and against each
// other. Evaluated by tests/browser_support.py:layout_problems.
(() => {
  const problems = [];
  const vw = innerWidth, vh = innerHeight;
  const texts = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let t = walker.nextNode(); t; t = walker.nextNode()) {
    if (!t.textContent.trim()) continue;
    const el = t.parentElement;
    const st = getComputedStyle(el);
    if (st.visibility === 'hidden' || el.closest('[aria-hidden="true"], option, .react-flow__attribution')) continue;
    if (!el.getClientRects().length) continue;
    const range = document.createRange();
    range.selectNodeContents(t);
    const r = range.getBoundingClientRect();
    if (r.width < 1 || r.height < 1) continue;
    const name = `"${t.textContent.trim().slice(0, 30)}" (${el.className || el.tagName})`;
    // Cut off: outside the window, or outside a box that hides overflow without scrolling.
    let clipped = r.left < -1 || r.top < -1 || r.right > vw + 1 || r.bottom > vh + 1;
    let scrolled = false;
    for (let a = el; a && a !== document.body; a = a.parentElement) {
      const s = getComputedStyle(a);
      if (s.overflowX === 'visible' && s.overflowY === 'visible') continue;
      const scrolls = /(auto|scroll)/.test(s.overflowX + s.overflowY) &&
        (a.scrollHeight > a.clientHeight + 1 || a.scrollWidth > a.clientWidth + 1);
      const b = a.getBoundingClientRect();
      const outside = r.left < b.left - 1 || r.top < b.top - 1 || r.right > b.right + 1 || r.bottom > b.bottom + 1;
      if (outside && scrolls) { scrolled = true; break; }  // a list to scroll through
      if (outside && !a.classList.contains('react-flow')) clipped = true;
    }
    if (scrolled) continue;
    if (clipped) problems.push(`cut off: ${name}`);
    texts.push({ r, name, el });
  }
  for (let i = 0; i < texts.length; i++) {
    for (let j = i + 1; j < texts.length; j++) {
      const a = texts[i].r, b = texts[j].r;
      const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
      const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
      if (w > 1 && h > 1) problems.push(`overlap: ${texts[i].name} / ${texts[j].name}`);
    }
  }
  // Controls narrower than their text (a button squeezed to nothing) count as cut off.
  for (const el of document.querySelectorAll('button, select, input[type=search]')) {
    if (!el.getClientRects().length) continue;
    if (el.scrollWidth > el.clientWidth + 2 && el.tagName === 'BUTTON') problems.push(`squeezed: ${el.textContent}`);
  }
  return problems;
})
