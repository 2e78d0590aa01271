// Lossless JSON for workflows: integers beyond 2^53 (seeds go to 2^64-1) become BigInt when
// parsed and are written back as plain JSON integers, so a file or PNG made by the CLI with a
// large seed makes the same image here. Everything else is ordinary JSON.

const MARK = "\u0000bigint:";

/** Quote integer literals of 16+ digits (outside strings) so JSON.parse cannot round them. */
function markBigIntegers(text: string): string {
  let out = "";
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
    } else if (c === "-" || (c >= "0" && c <= "9")) {
      const m = /^-?\d+(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
      const lit = m ? m[0] : c;
      const digits = lit.replace("-", "");
      const big = m && !m[1] && !m[2] && digits.length >= 16;
      out += big && !Number.isSafeInteger(Number(lit)) ? `"\\u0000bigint:${lit}"` : lit;
      i += lit.length;
    } else {
      out += c;
      i += 1;
    }
  }
  return out;
}

/** JSON.parse that keeps unsafe integers exact (as BigInt). */
export function parseJson(text: string): unknown {
  if (!/\d{16}/.test(text)) return JSON.parse(text);
  return JSON.parse(markBigIntegers(text), (_k, v) =>
    typeof v === "string" && v.startsWith(MARK) ? BigInt(v.slice(MARK.length)) : v,
  );
}

/** JSON.stringify that writes BigInt values as JSON integers. */
export function stringifyJson(value: unknown, space?: number): string {
  const text = JSON.stringify(
    value,
    (_k, v) => (typeof v === "bigint" ? `${MARK}${v.toString()}` : v),
    space,
  );
  return text.replace(/"\\u0000bigint:(-?\d+)"/g, "$1");
}

/** A whole number as the canvas stores it: a number when exact, else a BigInt. */
export function exactInteger(digits: string): number | bigint {
  const big = BigInt(digits);
  return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(big)
    : big;
}
