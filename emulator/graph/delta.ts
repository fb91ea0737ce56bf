/**
 * Delta queries for groups and applications, built on the directory's change log.
 *
 * A token is the log sequence number it was issued at (plus the query it belongs to), so a later
 * call with the deltaLink replays only what changed since: a quiet tenant costs one request that
 * returns an empty page and a new deltaLink. Pages within one round are pinned to the sequence
 * number seen on the round's first page; changes after it go to the next round.
 *
 * Large memberships are split: one page carries at most `MEMBER_BUDGET` `members@delta` entries,
 * and a group whose list continues is repeated on the next page with the rest (consumers must merge).
 */
import { z } from 'zod';
import type { EmuRequest, EmuResponse } from '../core/types';
import { applicationRecord, groupRecord, ODATA_TYPE } from './entities';
import { badRequest, decodeToken, encodeToken, GraphHttpError, link, ok, parseFilter, parseSelect, pick, unknownProperties } from './odata';
import type { Application, Directory, Group } from './state';

const MEMBER_BUDGET = 1000;
const DEFAULT_PAGE_SIZE = 100;
const MAX_FILTER_IDS = 50;

const tokenSchema = z.object({
  k: z.enum(['groups', 'apps']),
  /** Epoch: tokens from before `resetTokens()` are refused with 410. */
  e: z.number(),
  /** Changes after this sequence number are reported; 0 with `full` = initial synchronisation. */
  s: z.number(),
  full: z.boolean(),
  /** Upper bound of the round (set on its first page). */
  u: z.number().optional(),
  sel: z.array(z.string()).nullable(),
  ids: z.array(z.string()).nullable(),
  pos: z.number().default(0),
  mo: z.number().default(0),
  ps: z.number().default(DEFAULT_PAGE_SIZE),
});
type DeltaToken = z.infer<typeof tokenSchema>;

interface MemberEntry {
  id: string;
  removed: boolean;
}

interface Emission {
  id: string;
  object: Record<string, unknown>;
  members?: { size: number; at(pos: number): MemberEntry | undefined };
}

export class DeltaEngine {
  private epoch = 1;

  constructor(private readonly dir: Directory) {}

  /** Invalidates every delta token issued so far (their next use answers 410, forcing a full resync). */
  resetTokens(): void {
    this.epoch++;
  }

  handle(req: EmuRequest, kind: 'groups' | 'apps'): EmuResponse {
    const path = kind === 'groups' ? '/groups/delta' : '/applications/delta';
    const state = this.state(req, kind);
    const upTo = state.u ?? this.dir.seq;
    const context = `${req.baseUrl}/v1.0/$metadata#${kind === 'groups' ? 'groups' : 'applications'}`;
    if (req.query.get('$deltatoken')?.toLowerCase() === 'latest') {
      const next = encodeToken({ ...state, s: upTo, full: false, u: undefined, pos: 0, mo: 0 });
      return ok(req, { '@odata.context': context, '@odata.deltaLink': link(req, path, { $deltatoken: next }, false), value: [] });
    }
    const items = kind === 'groups' ? this.groupEmissions(state, upTo) : this.appEmissions(state, upTo);
    const value: Array<Record<string, unknown>> = [];
    let pos = state.pos;
    let mo = state.mo;
    let budget = MEMBER_BUDGET;
    let more = false;
    while (pos < items.length) {
      if (value.length >= state.ps || budget <= 0) {
        more = true;
        break;
      }
      const item = items[pos];
      if (!item) break;
      const obj = { ...item.object };
      if (item.members) {
        const entries: Array<Record<string, unknown>> = [];
        let p = mo;
        while (p < item.members.size && entries.length < budget) {
          const e = item.members.at(p++);
          if (e) entries.push(this.memberJson(e));
        }
        while (p < item.members.size && item.members.at(p) === undefined) p++;
        if (entries.length > 0) obj['members@delta'] = entries;
        budget -= entries.length;
        value.push(obj);
        if (p < item.members.size) {
          mo = p;
          more = true;
          break;
        }
      } else {
        value.push(obj);
      }
      pos++;
      mo = 0;
    }
    if (pos >= items.length) more = false;
    const body: Record<string, unknown> = { '@odata.context': context };
    if (more) {
      body['@odata.nextLink'] = link(req, path, { $skiptoken: encodeToken({ ...state, u: upTo, pos, mo }) }, false);
    } else {
      body['@odata.deltaLink'] = link(req, path, { $deltatoken: encodeToken({ ...state, s: upTo, full: false, u: undefined, pos: 0, mo: 0 }) }, false);
    }
    body.value = value;
    return ok(req, body, 200, state.ps !== DEFAULT_PAGE_SIZE ? { 'Preference-Applied': `odata.maxpagesize=${state.ps}` } : {});
  }

  /** The query state: from a token, or from the query options of an initial request. */
  private state(req: EmuRequest, kind: 'groups' | 'apps'): DeltaToken {
    const raw = req.query.get('$skiptoken') ?? req.query.get('$deltatoken');
    if (raw !== null && raw.toLowerCase() !== 'latest') {
      const parsed = tokenSchema.safeParse(decodeToken(raw));
      if (!parsed.success || parsed.data.k !== kind) throw badRequest('The delta token is invalid or belongs to another query.');
      if (parsed.data.e !== this.epoch) {
        throw new GraphHttpError(410, 'SyncStateNotFound', 'The sync state generation is no longer valid; start a full synchronization without a token.');
      }
      return parsed.data;
    }
    const sel = parseSelect(req) ?? null;
    if (sel) {
      const sample = kind === 'groups' ? groupRecord(sampleGroup) : applicationRecord(sampleApp);
      const unknown = unknownProperties(sample, sel, kind === 'groups' ? ['members'] : []);
      if (unknown.length > 0) {
        throw badRequest(`Could not find a property named '${unknown[0]}' on type 'microsoft.graph.${kind === 'groups' ? 'group' : 'application'}'.`);
      }
    }
    let ids: string[] | null = null;
    const filter = req.query.get('$filter');
    if (filter !== null && filter.trim() !== '') {
      const parsed = parseFilter(filter);
      if (!parsed.ids) throw badRequest("Delta queries support only $filter=id eq '…' clauses joined with or.", 'Request_UnsupportedQuery');
      if (parsed.ids.length > MAX_FILTER_IDS) throw badRequest(`Too many ids in $filter: at most ${MAX_FILTER_IDS} are allowed.`, 'Request_UnsupportedQuery');
      ids = parsed.ids.map((i) => i.toLowerCase());
    }
    const prefer = typeof req.headers.prefer === 'string' ? /odata\.maxpagesize=(\d+)/i.exec(req.headers.prefer) : null;
    const ps = prefer?.[1] ? Math.max(1, Math.min(999, Number(prefer[1]))) : DEFAULT_PAGE_SIZE;
    return { k: kind, e: this.epoch, s: 0, full: true, sel, ids, pos: 0, mo: 0, ps };
  }

  private memberJson(e: MemberEntry): Record<string, unknown> {
    const o = this.dir.lookup(e.id);
    const json: Record<string, unknown> = { '@odata.type': o ? ODATA_TYPE[o.type] : ODATA_TYPE.User, id: o?.value.id ?? e.id };
    if (e.removed) json['@removed'] = { reason: 'deleted' };
    return json;
  }

  private wanted(state: DeltaToken, id: string): boolean {
    return !state.ids || state.ids.includes(id.toLowerCase());
  }

  private membersSelected(state: DeltaToken): boolean {
    return !state.sel || state.sel.some((s) => s.toLowerCase() === 'members');
  }

  private groupObject(state: DeltaToken, g: Group): Record<string, unknown> {
    const record = groupRecord(g);
    const props = state.sel ? pick(record, state.sel.filter((s) => s.toLowerCase() !== 'members')) : record;
    return { ...props, id: g.id };
  }

  private fullGroup(state: DeltaToken, g: Group): Emission {
    const object = this.groupObject(state, g);
    if (!this.membersSelected(state)) return { id: g.id, object };
    const flat = this.dir.directMembers(g.id);
    const members = flat && {
      size: flat.size,
      at: (pos: number): MemberEntry | undefined => {
        const id = flat.at(pos);
        return id === undefined ? undefined : { id, removed: false };
      },
    };
    return members ? { id: g.id, object, members } : { id: g.id, object };
  }

  private groupEmissions(state: DeltaToken, upTo: number): Emission[] {
    if (state.full) {
      return [...this.dir.groups.values()].filter((g) => this.wanted(state, g.id)).map((g) => this.fullGroup(state, g));
    }
    const changes = new Map<string, { created: boolean; props: boolean; members: Map<string, 'add' | 'remove'> }>();
    for (const e of this.dir.changesBetween(state.s, upTo)) {
      if (e.kind === 'app' || !this.wanted(state, e.id)) continue;
      const key = e.id.toLowerCase();
      const c = changes.get(key) ?? { created: false, props: false, members: new Map<string, 'add' | 'remove'>() };
      changes.set(key, c);
      if (e.kind === 'group') {
        if (e.what === 'created') c.created = true;
        else c.props = true;
      } else {
        c.members.set(e.memberId, e.op);
      }
    }
    const out: Emission[] = [];
    for (const [key, c] of changes) {
      const g = this.dir.group(key);
      if (!g) {
        // Deleted groups go to the recycle bin first: Graph reports them as removed with reason "changed".
        out.push({ id: key, object: { id: key, '@removed': { reason: 'changed' } } });
        continue;
      }
      if (c.created) {
        out.push(this.fullGroup(state, g));
        continue;
      }
      const membersSelected = this.membersSelected(state);
      if (!c.props && !(membersSelected && c.members.size > 0)) continue;
      const object = this.groupObject(state, g);
      if (!membersSelected || c.members.size === 0) {
        out.push({ id: g.id, object });
        continue;
      }
      const entries = [...c.members].map(([id, op]): MemberEntry => ({ id, removed: op === 'remove' }));
      out.push({ id: g.id, object, members: { size: entries.length, at: (p) => entries[p] } });
    }
    return out;
  }

  private appEmissions(state: DeltaToken, upTo: number): Emission[] {
    const render = (a: Application): Emission => {
      const record = applicationRecord(a);
      return { id: a.id, object: { ...(state.sel ? pick(record, state.sel) : record), id: a.id } };
    };
    if (state.full) return [...this.dir.applications.values()].filter((a) => this.wanted(state, a.id)).map(render);
    const changed = new Set<string>();
    for (const e of this.dir.changesBetween(state.s, upTo)) {
      if (e.kind === 'app' && this.wanted(state, e.id)) changed.add(e.id.toLowerCase());
    }
    return [...changed].map((key) => {
      const a = this.dir.application(key);
      return a ? render(a) : { id: key, object: { id: key, '@removed': { reason: 'changed' } } };
    });
  }
}

const sampleGroup: Group = {
  id: '',
  displayName: '',
  description: null,
  securityEnabled: true,
  mailEnabled: false,
  createdDateTime: '',
  members: new Map(),
  ranges: [],
};

const sampleApp: Application = { id: '', appId: '', displayName: '', createdDateTime: '', owners: [], passwordCredentials: [], keyCredentials: [] };
