#!/usr/bin/env node
// Builds the addon at `npm install` (node-gyp rebuild). node-gyp downloads Node's headers from
// nodejs.org unless told where they are, which fails offline; most installs of Node (the
// official tarballs, nvm, Debian's nodejs) ship them beside the binary, so when npm has no
// nodedir set and they are there, node-gyp builds against them.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const env = { ...process.env };
if (!env.npm_config_nodedir && process.platform !== 'win32') {
  // Windows builds also need node.lib, which is not beside node.exe: leave them to node-gyp.
  const prefix = path.dirname(path.dirname(process.execPath));
  if (fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h'))) env.npm_config_nodedir = prefix;
}
// npm names its bundled node-gyp for install scripts; otherwise, the one on PATH.
const nodeGyp = env.npm_config_node_gyp;
const run = nodeGyp
  ? spawnSync(process.execPath, [nodeGyp, 'rebuild'], { stdio: 'inherit', env })
  : spawnSync('node-gyp', ['rebuild'], { stdio: 'inherit', env, shell: process.platform === 'win32' });
if (run.error) console.error(`vae-node: could not run node-gyp: ${run.error.message}`);
process.exit(run.status ?? 1);
