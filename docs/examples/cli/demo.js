// A small program for `polyracer run`: the CLI gives scripts console.*;
// the sandbox itself has no other globals beyond the language, setTimeout,
// clearTimeout and queueMicrotask.
const primes = [];
for (let n = 2; primes.length < 10; n++) {
  if (primes.every((p) => n % p !== 0)) primes.push(n);
}
console.log("first primes:", primes.join(" "));

const words = "the quick brown fox jumps over the lazy dog the end".split(" ");
const counts = new Map();
for (const w of words) counts.set(w, (counts.get(w) ?? 0) + 1);
console.log("word counts:", Object.fromEntries(counts));

async function main() {
  const later = (ms, v) => new Promise((resolve) => setTimeout(() => resolve(v), ms));
  const [a, b] = await Promise.all([later(20, "timers"), later(10, "work")]);
  console.log(`${a} ${b}`, "in", "polyracer");
}
main();
