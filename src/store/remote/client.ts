/**
 * The remote store client (undici). Same interface as the local store; the server enforces
 * the ref rules, and this client re-verifies every object it reads (an object is only as
 * trustworthy as its hash).
 */
import { Agent, request, type Dispatcher } from 'undici';
import { isObjectId, sha256Hex } from '../canonical.js';
import {
  CorruptObjectError,
  PublishConflictError,
  RemoteStoreError,
  StoreError,
  StoreNotFoundError,
  VersionExistsError,
} from '../errors.js';
import { assertIntegrationName, assertVersionNumber } from '../names.js';
import { decodeObject, type EncodedObject, type StoreObject } from '../objects.js';
import type { PublishLogEntry, PublishRequest, Store, VersionRef } from '../store.js';
import { STORE_API_PREFIX } from './server.js';

/** A ref the server could not read, reported by its `?problems=1` version listing. */
export interface RefProblem {
  version: number;
  code: string;
  message: string;
}

export interface RemoteStoreOptions {
  /** Base URL of `alloy serve`, e.g. https://alloy.example.com */
  url: string;
  /** Bearer token (ALLOY_TOKEN); never read from a config file. */
  token?: string;
  /** Bytes per upload request. Default 8 MiB. */
  uploadBatchBytes?: number;
  /** Ids per /objects/missing request. Default 900 (fits even a server's 64 KiB JSON limit). */
  missingBatchIds?: number;
  /** Largest response body read. Default 64 MiB (twice the server's 32 MiB upload limit, so any object it stored fits). */
  maxResponseBytes?: number;
  timeoutMs?: number;
}

export const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024;
export const DEFAULT_MISSING_BATCH_IDS = 900;

interface ErrorBody {
  error?: { code?: string; message?: string; hint?: string; details?: Record<string, unknown> };
}

export class RemoteStore implements Store {
  readonly kind = 'remote' as const;
  readonly location: string;
  private readonly base: string;
  private readonly agent: Agent;

  constructor(private readonly options: RemoteStoreOptions) {
    const u = new URL(options.url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      throw new RemoteStoreError('E_REMOTE_URL', `${options.url} is not an http(s) URL`, undefined, 'Set remotes.<name>.url to the base URL of `alloy serve`.');
    }
    this.base = `${u.origin}${u.pathname.replace(/\/$/, '')}${STORE_API_PREFIX}`;
    this.location = u.origin + u.pathname.replace(/\/$/, '');
    const timeout = options.timeoutMs ?? 30_000;
    this.agent = new Agent({ headersTimeout: timeout, bodyTimeout: timeout, connections: 8 });
  }

  private async call(method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown): Promise<{ status: number; bytes: Buffer }> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    let payload: string | undefined;
    if (body !== undefined) {
      payload = typeof body === 'string' ? body : JSON.stringify(body);
      headers['content-type'] = 'application/json';
    }
    let res;
    try {
      res = await request(`${this.base}${path}`, { method, headers, body: payload, dispatcher: this.agent });
    } catch (err) {
      throw new RemoteStoreError('E_REMOTE_UNREACHABLE', `cannot reach the store at ${this.location}: ${(err as Error).message}`, undefined,
        'Check the remote URL in alloy.config (remotes.<name>.url) and that `alloy serve` is running.');
    }
    const bytes = await this.readBody(res, method, path);
    if (res.statusCode >= 200 && res.statusCode < 300) return { status: res.statusCode, bytes };
    let parsed: ErrorBody = {};
    try {
      parsed = JSON.parse(bytes.toString('utf8')) as ErrorBody;
    } catch {
      /* not JSON: use the status alone */
    }
    throw this.toError(res.statusCode, parsed.error ?? {});
  }

  /** The response body, never more than maxResponseBytes (a declared length over it is refused unread). */
  private async readBody(res: Dispatcher.ResponseData, method: string, path: string): Promise<Buffer> {
    const limit = this.options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    const tooLarge = () => {
      // Stop reading and drop the connection; the abort that follows is expected.
      res.body.on('error', () => {});
      res.body.destroy();
      return new RemoteStoreError('E_REMOTE_RESPONSE_TOO_LARGE', `the store at ${this.location} answered ${method} ${path} with more than ${limit} bytes; refusing to read it`, res.statusCode,
        'Check that remotes.<name>.url points at `alloy serve`; a store response is never this large.');
    };
    const declared = Number(res.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) throw tooLarge();
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of res.body) {
        size += (chunk as Buffer).length;
        if (size > limit) throw tooLarge();
        chunks.push(chunk as Buffer);
      }
    } catch (err) {
      if (err instanceof RemoteStoreError) throw err;
      throw new RemoteStoreError('E_REMOTE_UNREACHABLE', `the store at ${this.location} broke off its answer: ${(err as Error).message}`, res.statusCode,
        'Check that `alloy serve` is running and re-run the command.');
    }
    return Buffer.concat(chunks, size);
  }

  private toError(status: number, e: NonNullable<ErrorBody['error']>): Error {
    const msg = e.message ?? `HTTP ${status}`;
    const d = e.details ?? {};
    switch (status) {
      case 401:
        return new RemoteStoreError('E_REMOTE_UNAUTHORIZED', `the store at ${this.location} refused the request: ${msg}`, status,
          this.options.token ? 'ALLOY_TOKEN is not a token this server knows; check it with the server\'s ALLOY_SERVE_TOKENS.' : 'Set ALLOY_TOKEN to a token of the server (ALLOY_SERVE_TOKENS).');
      case 403:
        return new RemoteStoreError('E_REMOTE_FORBIDDEN', `the store at ${this.location} refused the request: ${msg}`, status, e.hint ?? 'Use a token with the write role.');
      case 404:
        return new StoreNotFoundError(msg, e.hint ?? 'List what exists with `alloy versions`.');
      case 409:
        if (e.code === 'E_STORE_VERSION_EXISTS') return new VersionExistsError(String(d.integration ?? '?'), Number(d.version ?? 0));
        if (e.code === 'E_STORE_PUBLISH_CONFLICT') return new PublishConflictError(String(d.integration ?? '?'), (d.expected as string | null) ?? null, (d.actual as string | null) ?? null);
        return new RemoteStoreError(e.code ?? 'E_REMOTE_CONFLICT', msg, status, e.hint ?? 'Re-run the command.');
      case 413:
        return new RemoteStoreError('E_REMOTE_TOO_LARGE', msg, status, 'The request is over the server\'s body limit; release fewer or smaller workflows at once.');
      default:
        return new RemoteStoreError(e.code ?? `E_REMOTE_HTTP_${status}`, `the store at ${this.location} answered ${status}: ${msg}`, status, e.hint ?? 'See the server\'s log; run `alloy fsck` on its store.');
    }
  }

  private async json<T>(method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown): Promise<T> {
    const { bytes } = await this.call(method, path, body);
    return JSON.parse(bytes.toString('utf8')) as T;
  }

  private ip(integration: string): string {
    return `/integrations/${encodeURIComponent(assertIntegrationName(integration))}`;
  }

  async missingObjects(ids: string[]): Promise<string[]> {
    const unique = [...new Set(ids)];
    // In batches: a server's body limit for this route may be as small as 64 KiB (~900 ids).
    const size = Math.max(1, this.options.missingBatchIds ?? DEFAULT_MISSING_BATCH_IDS);
    const missing: string[] = [];
    for (let i = 0; i < unique.length; i += size) {
      missing.push(...(await this.json<{ missing: string[] }>('POST', '/objects/missing', { ids: unique.slice(i, i + size) })).missing);
    }
    return missing;
  }

  async putObjects(objects: EncodedObject[]): Promise<void> {
    const limit = this.options.uploadBatchBytes ?? 8 * 1024 * 1024;
    let batch: { id: string; data: string }[] = [];
    let size = 0;
    const flush = async () => {
      if (batch.length) await this.call('POST', '/objects', { objects: batch });
      batch = [];
      size = 0;
    };
    for (const o of objects) {
      if (size + o.bytes.length > limit) await flush();
      batch.push({ id: o.id, data: o.bytes.toString('utf8') });
      size += o.bytes.length + 80;
    }
    await flush();
  }

  async readObject(id: string): Promise<StoreObject> {
    if (!isObjectId(id)) throw new StoreError('E_STORE_BAD_ID', `"${id}" is not an object id`, { hint: 'Object ids are 64 hex digits (sha256).' });
    const { bytes } = await this.call('GET', `/objects/${id}`);
    const where = `${this.location}${STORE_API_PREFIX}/objects/${id}`;
    if (sha256Hex(bytes) !== id) throw new CorruptObjectError(id, where, 'the server sent bytes that do not match the sha256');
    const value = decodeObject(bytes);
    if (typeof value === 'string') throw new CorruptObjectError(id, where, value);
    return value;
  }

  async listIntegrations(): Promise<string[]> {
    return (await this.json<{ integrations: string[] }>('GET', '/integrations')).integrations;
  }

  async latestVersion(integration: string): Promise<VersionRef | null> {
    return (await this.json<{ latest: VersionRef | null }>('GET', `${this.ip(integration)}/versions/latest`)).latest;
  }

  async readVersion(integration: string, version: number): Promise<VersionRef> {
    return this.json<VersionRef>('GET', `${this.ip(integration)}/versions/${assertVersionNumber(version)}`);
  }

  async listVersions(integration: string, options: { newest?: number } = {}): Promise<VersionRef[]> {
    const newest = options.newest !== undefined && options.newest > 0 ? `?newest=${Math.floor(options.newest)}` : '';
    return (await this.json<{ versions: VersionRef[] }>('GET', `${this.ip(integration)}/versions${newest}`)).versions;
  }

  /**
   * Every version the server can read, and the refs it cannot (fsck): one bad ref no longer
   * fails the whole listing. A server without `?problems=1` answers the plain list.
   */
  async versionsWithProblems(integration: string): Promise<{ versions: VersionRef[]; problems: RefProblem[] }> {
    const body = await this.json<{ versions: VersionRef[]; problems?: RefProblem[] }>('GET', `${this.ip(integration)}/versions?problems=1`);
    return { versions: body.versions, problems: body.problems ?? [] };
  }

  async createVersion(integration: string, ref: VersionRef): Promise<void> {
    await this.call('PUT', `${this.ip(integration)}/versions/${assertVersionNumber(ref.version)}`, { id: ref.id });
  }

  async readPublished(integration: string): Promise<VersionRef | null> {
    return (await this.json<{ published: VersionRef | null }>('GET', `${this.ip(integration)}/published`)).published;
  }

  async movePublished(integration: string, req: PublishRequest): Promise<PublishLogEntry> {
    return (await this.json<{ entry: PublishLogEntry }>('PUT', `${this.ip(integration)}/published`, req)).entry;
  }

  async readPublishLog(integration: string): Promise<PublishLogEntry[]> {
    return (await this.json<{ entries: PublishLogEntry[] }>('GET', `${this.ip(integration)}/log`)).entries;
  }

  /** No shared lock over HTTP: createVersion answers 409 and the release reports a lost race. */
  async withReleaseLock<T>(_integration: string, fn: () => Promise<T>): Promise<T> {
    return fn();
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}
