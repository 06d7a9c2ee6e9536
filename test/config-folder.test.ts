// A config folder read again: unchanged files keep their parsed resources (the same objects), an edit
// is read alone, resources stay numbered across the folder as loadConfigDir numbers them, and a
// removed file's resources go. Each document is parsed apart, and an edited file parses only the
// documents whose text changed.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfigDir, parseConfigText } from '../src/core/config/load.js';
import { ConfigFolder } from '../src/core/sources/config-folder.js';

const svc = (name: string) => `apiVersion: v1\nkind: Service\nmetadata: {name: ${name}, namespace: default}\nspec:\n  ports: [{name: http, port: 80}]\n`;

describe('ConfigFolder', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshgate-folder-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const orders = (r: { resources: { metadata: { name: string }; origin: { order: number } }[] }) => r.resources.map((x) => `${x.metadata.name}@${x.origin.order}`);

  it('reads only what changed, and numbers resources as a full load does', async () => {
    await writeFile(join(dir, 'a.yaml'), svc('a1'));
    await writeFile(join(dir, 'b.yaml'), `${svc('b1')}---\n${svc('b2')}`);
    const folder = new ConfigFolder(dir);
    const first = await folder.read();
    assert.equal(first.changed, true);
    assert.deepEqual(orders(first.result), ['a1@0', 'b1@1', 'b2@2']);

    const again = await folder.read();
    assert.equal(again.changed, false, 'nothing changed on disk');
    assert.equal(again.result.resources[1], first.result.resources[1], 'the same parsed objects');

    await writeFile(join(dir, 'a.yaml'), `${svc('a1')}---\n${svc('a2')}`);
    folder.markChanged('a.yaml');
    const edited = await folder.read();
    assert.equal(edited.changed, true);
    assert.deepEqual(orders(edited.result), orders(await loadConfigDir(dir)));
    assert.deepEqual(orders(edited.result), ['a1@0', 'a2@1', 'b1@2', 'b2@3']);
    assert.equal(edited.result.resources[2]!.spec, first.result.resources[1]!.spec, 'b.yaml was not parsed again');
    assert.equal(edited.result.resources[2]!.origin.lineOf(['spec', 'ports', 0]), first.result.resources[1]!.origin.lineOf(['spec', 'ports', 0]));
  });

  it('a rewrite with the same text is no change; a removed file takes its resources with it', async () => {
    const folder = new ConfigFolder(dir);
    await folder.read();
    await writeFile(join(dir, 'b.yaml'), `${svc('b1')}---\n${svc('b2')}`);
    folder.markChanged('b.yaml');
    assert.equal((await folder.read()).changed, false);
    await unlink(join(dir, 'b.yaml'));
    const after = await folder.read();
    assert.equal(after.changed, true);
    assert.deepEqual(after.result.resources.map((r) => r.metadata.name), ['a1', 'a2']);
  });

  it('in a file read again, a document that reads as before keeps its object; one that moved or changed does not', async () => {
    await writeFile(join(dir, 'c.yaml'), `${svc('c1')}---\n${svc('c2')}---\n${svc('c3')}`);
    const folder = new ConfigFolder(dir);
    const before = (await folder.read()).result.resources.filter((r) => r.origin.file.endsWith('c.yaml'));
    // c2's port changes; c3's text is the same but one line lower.
    await writeFile(join(dir, 'c.yaml'), `${svc('c1')}---\n${svc('c2').replace('port: 80', 'port: 81')}\n---\n${svc('c3')}`);
    folder.markChanged('c.yaml');
    const now = (await folder.read()).result.resources.filter((r) => r.origin.file.endsWith('c.yaml'));
    assert.equal(now[0], before[0], 'c1 is the same object');
    assert.notEqual(now[1], before[1]);
    assert.notEqual(now[2], before[2]);
    assert.equal(now[2]!.origin.line, before[2]!.origin.line + 1, 'c3 says its new line');
    assert.deepEqual(now.map((r) => r.origin.line), (await loadConfigDir(dir)).resources.filter((r) => r.origin.file.endsWith('c.yaml')).map((r) => r.origin.line));
  });

  it('parses each document apart, with the lines, columns and problems of the whole file', () => {
    const text = `# services\n${svc('d1')}---\n${svc('d2')}--- # next\n\napiVersion: v1\nkind: Service\nmetadata: {name: d3}\nspec: {ports: [{port: x}]}\n---\nkind: [\n`;
    const { resources, problems } = parseConfigText(text, 'd.yaml');
    assert.deepEqual(resources.map((r) => [r.metadata.name, r.origin.line, r.origin.lineOf(['spec', 'ports', 0])]), [['d1', 2, 6], ['d2', 8, 12], ['d3', 15, 18]]);
    assert.deepEqual(problems.map((p) => [p.line, p.column]), [[21, 1]], 'where the parser stops, as in the whole file');
  });

  it('a quote left open ends with its document: the documents after it still load', () => {
    const { resources, problems } = parseConfigText(`${svc('e1').replace('name: http', 'name: "http')}---\n${svc('e2')}`, 'e.yaml');
    assert.deepEqual(resources.map((r) => r.metadata.name), ['e2']);
    assert.deepEqual(problems.map((p) => [p.line, p.message.startsWith('cannot parse')]), [[6, true]]);
  });

  it('an edited file parses only the documents whose text changed', async () => {
    await writeFile(join(dir, 'f.yaml'), `${svc('f1')}---\n${svc('f2')}`);
    const folder = new ConfigFolder(dir);
    const before = (await folder.read()).result.resources.filter((r) => r.origin.file.endsWith('f.yaml'));
    await writeFile(join(dir, 'f.yaml'), `${svc('f1')}---\n${svc('f2').replace('port: 80', 'port: 81')}`);
    folder.markChanged('f.yaml');
    const now = (await folder.read()).result.resources.filter((r) => r.origin.file.endsWith('f.yaml'));
    assert.equal(now[0]!.origin.lineOf, before[0]!.origin.lineOf, 'f1 was taken as parsed before, its line table included');
    assert.notEqual(now[1], before[1]);
  });

  it('after a file before it changed its count, an edited file still takes its unchanged documents at their new order', async () => {
    await writeFile(join(dir, 'g1.yaml'), svc('g1'));
    await writeFile(join(dir, 'g2.yaml'), `${svc('g2')}---\n${svc('g3')}`);
    const folder = new ConfigFolder(dir);
    await folder.read();
    await writeFile(join(dir, 'g1.yaml'), `${svc('g1')}---\n${svc('g0')}`);
    folder.markChanged('g1.yaml');
    const moved = (await folder.read()).result.resources;
    await writeFile(join(dir, 'g2.yaml'), `${svc('g2')}---\n${svc('g3').replace('port: 80', 'port: 81')}`);
    folder.markChanged('g2.yaml');
    const edited = (await folder.read()).result.resources;
    assert.deepEqual(orders({ resources: edited }), orders(await loadConfigDir(dir)));
    const g2 = (rs: typeof edited) => rs.find((r) => r.metadata.name === 'g2');
    assert.equal(g2(edited), g2(moved), 'g2 as renumbered, not parsed again');
  });
});
