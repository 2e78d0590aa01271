// This tab's client id, issued by the server: jobs, their events and the job list are
// private to it (docs/api.md, "Jobs"), so it must come from POST /api/clients.

const KEY = "sdgraph.client_id";

/** The id in use (a live binding: set by obtainClientId before the app renders). */
export let clientId = "";

function stored(): string | null {
  try {
    return sessionStorage.getItem(KEY);
  } catch {
    return null;
  }
}

/** Ask the server for an id, sending the one this tab kept across reloads: the server
 * confirms it if it issued it, else (new data folder, forged value) gives a fresh one. */
export async function obtainClientId(): Promise<string> {
  let delay = 250;
  for (;;) {
    try {
      const res = await fetch("/api/clients", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ client_id: clientId || stored() }),
      });
      if (res.ok) {
        const body = (await res.json()) as { client_id: string };
        clientId = body.client_id;
        try {
          sessionStorage.setItem(KEY, clientId);
        } catch {
          /* private mode: the id lasts as long as the tab */
        }
        return clientId;
      }
      if (res.status < 500) throw new Error(`POST /api/clients answered ${res.status}`);
    } catch (err) {
      if (delay > 4000) throw err;
    }
    await new Promise((r) => setTimeout(r, delay));
    delay *= 2;
  }
}

/** Headers that identify this tab to the job endpoints. */
export function clientHeaders(): Record<string, string> {
  return clientId ? { "X-Client-Id": clientId } : {};
}
