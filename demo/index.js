'use strict';
// velo demo: prints what it loaded from a node_modules that velo laid out.
const express = require('express');
const semver = require('semver');
const { Command } = require('commander');
const program = new Command().name('velo-demo').option('--port <n>', 'port', '0');
program.parse();
console.log(`express ${require('express/package.json').version}, semver ${semver.valid('1.2.3')}, commander ok`);
const server = express().get('/', (_req, res) => res.send('ok')).listen(Number(program.opts().port), '127.0.0.1', () => {
  console.log(`listening on 127.0.0.1:${server.address().port}`);
  server.close();
});
