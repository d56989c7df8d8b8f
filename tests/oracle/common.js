'use strict';
// Shared plumbing of the oracle scripts: load the original router from TINYDANCER_ORACLE_DIR,
// read one JSON request on stdin, write one JSON result on stdout behind a marker line.
// The native trainer prints its own progress to stdout, so the Python driver reads only the marked line.
const path = require('path');

const MARKER = 'TINYDANCER_ORACLE_RESULT ';

function loadOriginal() {
  const dir = process.env.TINYDANCER_ORACLE_DIR;
  if (!dir) {
    throw new Error('TINYDANCER_ORACLE_DIR is not set (expected the folder `make oracle` installs into)');
  }
  return require(path.join(dir, 'node_modules', '@ruvector', 'tiny-dancer'));
}

function readStdinJson() {
  return new Promise((resolve, reject) => {
    const chunks = [];
    process.stdin.on('data', (c) => chunks.push(c));
    process.stdin.on('error', reject);
    process.stdin.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch (e) {
        reject(e);
      }
    });
  });
}

function main(handler) {
  readStdinJson()
    .then((input) => handler(loadOriginal(), input))
    .then((result) => {
      process.stdout.write('\n' + MARKER + JSON.stringify(result) + '\n');
    })
    .catch((err) => {
      process.stderr.write(String(err && err.stack ? err.stack : err) + '\n');
      process.exit(1);
    });
}

module.exports = { main, MARKER };
