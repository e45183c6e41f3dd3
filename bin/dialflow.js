#!/usr/bin/env node
// The `dialflow` command. Sources are TypeScript, loaded through tsx's ESM loader.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
