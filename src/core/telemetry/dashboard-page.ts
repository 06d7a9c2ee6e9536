// The mesh dashboard: one self-contained page (no CDN, no framework, works offline) that draws the
// service graph from `graph.json` beside it every 2 s without reloading — workloads as nodes, the
// gateway as the entry on the left, edges labelled with req/s, error % and p99, a padlock on mutual
// TLS edges; a node sits one column right of its furthest caller — and shows a node's inbound and outbound traffic, routes and configuration problems
// when it is clicked or chosen with the keyboard (Tab, then Enter; Escape closes). Served by the
// control plane's debug port and a gateway's admin port alike (serveDashboard).

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ServiceGraph } from './service-graph.js';
import { internalFailure, sendEndpointFailure } from '../proxy/respond.js';

/** What a node's panel shows beside its traffic. */
export interface NodeDetails {
  readonly routes: readonly string[];
  readonly problems: readonly string[];
}

export interface DashboardData extends ServiceGraph {
  readonly title: string;
  readonly details: Readonly<Record<string, NodeDetails>>;
}

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>meshgate · service graph</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
:root{--bg:#0f1720;--panel:#17212b;--fg:#e6edf3;--dim:#8b98a5;--ok:#3fb950;--warn:#d29922;--bad:#f85149;--edge:#58a6ff}
*{box-sizing:border-box}body{margin:0;font:14px/1.4 system-ui,sans-serif;background:var(--bg);color:var(--fg);display:flex;height:100vh}
main{flex:1;display:flex;flex-direction:column;min-width:0}header{padding:10px 16px;border-bottom:1px solid #263240;display:flex;gap:16px;align-items:baseline}
h1{font-size:16px;margin:0}#status{color:var(--dim);font-size:12px}svg{flex:1;width:100%}
.node rect{fill:#1f2c38;stroke:#3b4b5c;stroke-width:1.5;rx:8}.node.gateway rect{stroke:var(--edge)}.node.unknown rect{stroke-dasharray:4 3}
.node text{fill:var(--fg);font-size:13px;text-anchor:middle}.node .ns{fill:var(--dim);font-size:11px}
.node:focus{outline:none}.node:focus rect,.node.sel rect{stroke:#f0f6fc;stroke-width:3}
.edge path{fill:none;stroke-width:2}.edge text{font-size:11px;fill:var(--fg);paint-order:stroke;stroke:var(--bg);stroke-width:4px}
aside{width:380px;background:var(--panel);border-left:1px solid #263240;padding:14px;overflow:auto}aside[hidden]{display:none}
table{border-collapse:collapse;width:100%;font-size:12px;margin-bottom:12px}th,td{text-align:left;padding:3px 4px;border-bottom:1px solid #263240}
h2{font-size:15px;margin:0 0 8px}h3{font-size:13px;margin:12px 0 4px;color:var(--dim)}button{background:#263240;color:var(--fg);border:1px solid #3b4b5c;border-radius:4px;padding:2px 8px;cursor:pointer;float:right}
ul{margin:0;padding-left:18px;font-size:12px}.legend{color:var(--dim);font-size:12px}
</style></head><body>
<main><header><h1 id="title">meshgate</h1><span id="status" role="status" aria-live="polite">loading…</span>
<span class="legend">edge: req/s · error % · p99 &nbsp; padlock = mutual TLS &nbsp; Tab to a node, Enter for details</span></header>
<svg id="graph" role="img" aria-label="service graph"><defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="context-stroke"/></marker></defs><g id="edges"></g><g id="nodes"></g></svg></main>
<aside id="panel" hidden aria-label="node details"></aside>
<script>
"use strict";
const NS='http://www.w3.org/2000/svg';let data=null,selected=null;
const el=(n,a={},p)=>{const e=document.createElementNS(NS,n);for(const k in a)e.setAttribute(k,a[k]);if(p)p.appendChild(e);return e};
const fmt=(x,d=1)=>x>=100?x.toFixed(0):x.toFixed(d);
const color=e=>e.errorPercent>=5?'var(--bad)':e.errorPercent>0?'var(--warn)':'var(--ok)';
function layout(nodes,edges){const out=new Map(nodes.map(n=>[n.id,[]]));const indeg=new Map(nodes.map(n=>[n.id,0]));
for(const e of edges){if(e.source===e.target)continue;out.get(e.source)?.push(e.target);indeg.set(e.target,(indeg.get(e.target)||0)+1)}
const depth=new Map();let q=nodes.filter(n=>n.kind==='gateway').map(n=>n.id);if(!q.length)q=nodes.filter(n=>!indeg.get(n.id)).map(n=>n.id);if(!q.length&&nodes.length)q=[nodes[0].id];
q.forEach(id=>depth.set(id,0));for(let round=0;round<nodes.length&&q.length;round++){const next=[];for(const id of q)for(const t of out.get(id)||[]){const d=depth.get(id)+1;if(!depth.has(t)||depth.get(t)<d){depth.set(t,d);next.push(t)}}q=next}
let max=0;for(const n of nodes){if(!depth.has(n.id))depth.set(n.id,0);max=Math.max(max,depth.get(n.id))}
const cols=[];for(const n of nodes){(cols[depth.get(n.id)]??=[]).push(n)}
const svg=document.getElementById('graph');const W=svg.clientWidth||1000,H=svg.clientHeight||600;const pos=new Map();
cols.forEach((col,i)=>col.forEach((n,j)=>pos.set(n.id,{x:(W/(max+2))*(i+1),y:(H/(col.length+1))*(j+1)})));return pos}
function lock(g,x,y){el('rect',{x:x-5,y:y-1,width:10,height:8,rx:1.5,fill:'var(--ok)'},g);el('path',{d:\`M\${x-3},\${y-1}v-3a3,3 0 0 1 6,0v3\`,fill:'none',stroke:'var(--ok)','stroke-width':1.6},g)}
function draw(){const {nodes,edges}=data;const pos=layout(nodes,edges);const eg=document.getElementById('edges'),ng=document.getElementById('nodes');eg.textContent='';ng.textContent='';
for(const e of edges){const a=pos.get(e.source),b=pos.get(e.target);if(!a||!b)continue;const g=el('g',{class:'edge','data-source':e.source,'data-target':e.target},eg);
const x1=a.x+70,x2=b.x-70,mx=(x1+x2)/2,bend=(a.y===b.y&&e.source===e.target)?-60:0;
el('path',{d:\`M\${x1},\${a.y}C\${mx},\${a.y+bend} \${mx},\${b.y+bend} \${x2},\${b.y}\`,stroke:color(e),'marker-end':'url(#arrow)'},g);
const ly=(a.y+b.y)/2-8;const t=el('text',{x:mx,y:ly,'text-anchor':'middle'},g);t.textContent=\`\${fmt(e.rps)} req/s · \${fmt(e.errorPercent)}% · p99 \${e.p99Ms==null?'–':e.p99Ms+' ms'}\`;
if(e.mtls){lock(g,mx,ly+10);const l=el('title',{},g);l.textContent='mutual TLS'}}
for(const n of nodes){const p=pos.get(n.id);const g=el('g',{class:'node '+n.kind+(selected===n.id?' sel':''),tabindex:0,role:'button','data-id':n.id,'aria-label':\`\${n.workload} in \${n.namespace}\`,transform:\`translate(\${p.x},\${p.y})\`},ng);
el('rect',{x:-70,y:-22,width:140,height:44},g);const t=el('text',{y:-3},g);t.textContent=n.workload.length>20?n.workload.slice(0,19)+'…':n.workload;const s=el('text',{y:13,class:'ns'},g);s.textContent=n.kind==='gateway'?'gateway · '+n.namespace:n.namespace;
g.addEventListener('click',()=>open(n.id));g.addEventListener('keydown',ev=>{if(ev.key==='Enter'||ev.key===' '){ev.preventDefault();open(n.id)}})}
if(selected)panel()}
function rows(list,key){if(!list.length)return '<p class="legend">none</p>';return '<table><tr><th>'+key+'</th><th>req/s</th><th>err %</th><th>p99</th><th>total</th><th>mTLS</th></tr>'+list.map(e=>\`<tr><td>\${esc((key==='from'?e.source:e.target).split('/')[1])}</td><td>\${fmt(e.rps)}</td><td>\${fmt(e.errorPercent)}</td><td>\${esc(e.p99Ms??'–')}</td><td>\${esc(e.total)}</td><td>\${e.mtls?'yes':'no'}</td></tr>\`).join('')+'</table>'}
const esc=s=>String(s).replace(/[&<>"]/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
function panel(){const n=data.nodes.find(x=>x.id===selected);const p=document.getElementById('panel');if(!n){p.hidden=true;return}const d=data.details[n.id]||{routes:[],problems:[]};
p.hidden=false;p.innerHTML=\`<button id="close" aria-label="close details">×</button><h2>\${esc(n.workload)}</h2><div class="legend">\${esc(n.namespace)} · \${esc(n.kind)}</div><h3>Inbound</h3>\${rows(data.edges.filter(e=>e.target===n.id),'from')}<h3>Outbound</h3>\${rows(data.edges.filter(e=>e.source===n.id),'to')}<h3>Routes</h3>\${d.routes.length?'<ul>'+d.routes.map(r=>'<li>'+esc(r)+'</li>').join('')+'</ul>':'<p class="legend">none</p>'}<h3>Configuration problems</h3>\${d.problems.length?'<ul>'+d.problems.map(r=>'<li>'+esc(r)+'</li>').join('')+'</ul>':'<p class="legend">none</p>'}\`;
document.getElementById('close').onclick=close}
function open(id){selected=id;draw();document.getElementById('close')?.focus()}
function close(){const id=selected;selected=null;document.getElementById('panel').hidden=true;draw();document.querySelector('.node[data-id="'+CSS.escape(id)+'"]')?.focus()}
document.addEventListener('keydown',ev=>{if(ev.key==='Escape'&&selected)close()});
async function tick(){try{const r=await fetch('graph.json',{cache:'no-store'});data=await r.json();document.getElementById('title').textContent=data.title;
const active=document.activeElement?.getAttribute?.('data-id');draw();if(active)document.querySelector('.node[data-id="'+CSS.escape(active)+'"]')?.focus();
document.getElementById('status').textContent='updated '+new Date(data.at).toLocaleTimeString()+' · '+data.nodes.length+' nodes, '+data.edges.length+' edges'}catch(e){document.getElementById('status').textContent='cannot reach the dashboard data: '+e.message}}
tick();setInterval(tick,2000);addEventListener('resize',()=>data&&draw());
</script></body></html>
`;

/**
 * Answers `/` (or `/dashboard`) with the page and `graph.json` beside it; false when the path is not
 * the dashboard's, so the server can answer it otherwise.
 */
export function serveDashboard(req: IncomingMessage, res: ServerResponse, data: () => Promise<DashboardData>): boolean {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method !== 'GET') return false;
  if (path === '/' || path === '/dashboard' || path === '/dashboard/') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'content-security-policy': "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'" }).end(PAGE);
    return true;
  }
  if (path === '/graph.json' || path === '/dashboard/graph.json') {
    data().then(
      (d) => res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(d)),
      (err: unknown) => sendEndpointFailure(res, internalFailure((err as Error).message), 'json'),
    );
    return true;
  }
  return false;
}

/** The page itself (for a server that is not node:http, such as fastify). */
export const DASHBOARD_HTML = PAGE;
