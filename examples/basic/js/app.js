// The "basic" function in JavaScript: a JSON person with money + 1 (examples/basic/README.md).
//
// JavaScript numbers are doubles: an integer above 2^53 - 1 cannot be told from its
// neighbours, so `money` and `expected` must be safe integers (|n| <= 2^53 - 1) and
// money + 1 must be one too; anything larger fails the input.
import { component } from "../../../sdks/js/function_stream.js";

const decoder = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

function integer(value, field) {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new TypeError(`'${field}' must be an integer`);
  }
  if (!Number.isSafeInteger(value)) {
    throw new RangeError(`'${field}' is outside the safe integer range (2^53 - 1)`);
  }
  return value;
}

// JSON.parse reads 1.0 and 1e2 as the integers 1 and 100, but an integer here is a
// number written without a fraction or exponent. So before parsing, every number
// written with one (outside strings) becomes a string: it then fails the type
// check if it is `money` or `expected`, and is ignored anywhere else.
const TOKENS = /"(?:[^"\\]|\\.)*"|-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/g;

function markFractions(text) {
  return text.replace(TOKENS, (token) =>
    token[0] !== '"' && /[.eE]/.test(token) ? '"(not an integer)"' : token,
  );
}

function basic(data) {
  const text = decoder.decode(data);
  const person = JSON.parse(markFractions(text));
  if (person === null || typeof person !== "object" || Array.isArray(person)) {
    throw new TypeError("input must be one JSON object");
  }
  if (!("name" in person) || !("money" in person)) {
    throw new TypeError("input needs 'name' and 'money'");
  }
  if (typeof person.name !== "string") throw new TypeError("'name' must be a string");
  const money = integer(person.money, "money");
  const expected =
    person.expected === undefined || person.expected === null
      ? 0
      : integer(person.expected, "expected");
  if (!Number.isSafeInteger(money + 1)) throw new RangeError("'money' + 1 is not a safe integer");
  const out = `{"name":${JSON.stringify(person.name)},"money":${money + 1},"expected":${expected}}`;
  return encoder.encode(out);
}

export const process = component(basic);
