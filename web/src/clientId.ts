// This tab's client id: the websocket and job submissions use it to find the tab's own jobs.

/** One client id per tab, kept across reloads so the tab sees its own jobs again. */
export const clientId = ((): string => {
  const key = "sdgraph.client_id";
  const fresh = () =>
    typeof crypto.randomUUID === "function"
      ? crypto.randomUUID()
      : Math.random().toString(36).slice(2) + Date.now().toString(36);
  try {
    const id = sessionStorage.getItem(key) || fresh();
    sessionStorage.setItem(key, id);
    return id;
  } catch {
    return fresh();
  }
})();
