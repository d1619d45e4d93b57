#!/usr/bin/env node
// The `kiel` command. A committed launcher rather than dist/cli.js itself: npm links a workspace's bin at
// `npm ci` time, before anything is built, and skips a target that does not exist yet.
require('../dist/cli.js');
