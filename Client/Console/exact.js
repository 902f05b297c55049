// Exact money for the console: the API's JSON numbers are kept as the text the API wrote ("19.987793", "10.0000"),
// never turned into a JavaScript double. Sums are done on BigInt with the decimal point tracked by hand.
"use strict";

const Exact = (() => {
  /** Parses JSON text like JSON.parse, except that every number is returned as its source text (a string). */
  function parseJson(text) {
    let i = 0;
    const fail = (what) => { throw new SyntaxError(`Invalid JSON from the API (${what} at ${i})`); };
    const ws = () => { while (i < text.length && " \t\n\r".includes(text[i])) i++; };
    function value() {
      ws();
      const c = text[i];
      if (c === "{") {
        i++; const obj = {}; ws();
        if (text[i] === "}") { i++; return obj; }
        for (;;) {
          ws(); if (text[i] !== '"') fail("key");
          const key = string(); ws();
          if (text[i++] !== ":") fail("colon");
          obj[key] = value(); ws();
          if (text[i] === ",") { i++; continue; }
          if (text[i++] === "}") return obj;
          fail("object");
        }
      }
      if (c === "[") {
        i++; const arr = []; ws();
        if (text[i] === "]") { i++; return arr; }
        for (;;) {
          arr.push(value()); ws();
          if (text[i] === ",") { i++; continue; }
          if (text[i++] === "]") return arr;
          fail("array");
        }
      }
      if (c === '"') return string();
      if (text.startsWith("true", i)) { i += 4; return true; }
      if (text.startsWith("false", i)) { i += 5; return false; }
      if (text.startsWith("null", i)) { i += 4; return null; }
      const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
      if (!m) fail("value");
      i += m[0].length;
      return m[0];
    }
    function string() {
      // From the opening quote to the closing one; JSON.parse decodes the escapes.
      const start = i++;
      while (i < text.length && text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
      if (i >= text.length) fail("string");
      i++;
      return JSON.parse(text.slice(start, i));
    }
    const result = value(); ws();
    if (i !== text.length) fail("trailing text");
    return result;
  }

  /** "-12.3400" -> { units: -123400n, scale: 4 }; exponents (never written by the API) are folded in. */
  function parse(text) {
    const m = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(String(text).trim());
    if (!m) throw new Error(`Not a decimal: ${text}`);
    let digits = m[2] + (m[3] || "");
    let scale = (m[3] || "").length - Number(m[4] || 0);
    if (scale < 0) { digits += "0".repeat(-scale); scale = 0; }
    const units = BigInt(digits) * (m[1] === "-" ? -1n : 1n);
    return { units, scale };
  }

  function format({ units, scale }) {
    const negative = units < 0n;
    let digits = (negative ? -units : units).toString();
    if (scale > 0) {
      digits = digits.padStart(scale + 1, "0");
      digits = `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
    }
    return (negative ? "-" : "") + digits;
  }

  /** The exact sum of decimal strings, with the largest scale among them ("0.25" + "0.125" = "0.375"). */
  function sum(values) {
    const parsed = values.map(parse);
    const scale = parsed.reduce((s, p) => Math.max(s, p.scale), 0);
    const units = parsed.reduce((acc, p) => acc + p.units * 10n ** BigInt(scale - p.scale), 0n);
    return format({ units, scale });
  }

  /** Numerically equal? ("10.0000" equals "10") */
  function equals(a, b) { return parse(sum([a, negate(b)])).units === 0n; }

  function negate(text) { const p = parse(text); return format({ units: -p.units, scale: p.scale }); }

  /** A decimal a person typed: digits with an optional fraction (no sign, no exponent), e.g. "5" or "12.50". */
  function isPlainDecimal(text) { return /^\d+(\.\d+)?$/.test(text); }

  return { parseJson, parse, format, sum, equals, negate, isPlainDecimal };
})();
