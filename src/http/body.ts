/**
 * Reading a request body for the three servers (runtime, store, relay): the exact bytes
 * received, since signatures are computed over them, and never more than `limit`. A
 * declared Content-Length over the limit is refused before reading; a streamed body that
 * grows past it stops being kept (the rest is discarded, not buffered). Each server turns
 * BodyTooLargeError into its own 413; new code calls readBody/readJsonBody, which throw
 * the kit's one 413 HttpError.
 */
import type { IncomingMessage } from 'node:http';
import { BODY_TOO_LARGE, HttpError } from './error.js';
import { JSON_MAX_DEPTH, jsonTooDeep, valueProblem } from '../core/json-depth.js';

export class BodyTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`request body is larger than ${limit} bytes`);
  }
}

/**
 * The whole body when it has already arrived within the limit (a small body comes in the packet
 * with the headers, and the parser has finished it by the time a route reads it): taken from
 * the stream's buffer at once rather than flowed through 'data' and 'end' events over later
 * ticks. Undefined when it has not (or is declared over the limit): read it with readRequestBody.
 */
function arrivedBody(req: IncomingMessage, limit: number): Buffer | undefined {
  if (!req.complete || req.readableFlowing || req.readableLength > limit) return undefined;
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return undefined;
  const first = req.read() as Buffer | null;
  if (first === null) return Buffer.alloc(0);
  const more = req.read() as Buffer | null;
  if (more === null) return first;
  const chunks = [first, more];
  for (let c = req.read() as Buffer | null; c !== null; c = req.read() as Buffer | null) chunks.push(c);
  return Buffer.concat(chunks);
}

export function readRequestBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const arrived = arrivedBody(req, limit);
  if (arrived) return Promise.resolve(arrived);
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    return Promise.reject(new BodyTooLargeError(limit));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > limit) {
        done = true;
        chunks.length = 0;
        reject(new BodyTooLargeError(limit));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (done) return;
      done = true;
      resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size));
    });
    req.on('error', (err) => {
      if (done) return;
      done = true;
      reject(err);
    });
  });
}

/**
 * alloy never decompresses a body (no gzip bomb can reach a parser), so a compressed one is
 * refused by name rather than parsed as JSON (a 400 quoting binary garbage) or stored.
 */
export function refuseContentEncoding(req: IncomingMessage): void {
  const enc = req.headers['content-encoding'];
  if (enc === undefined || enc.trim() === '' || enc.trim().toLowerCase() === 'identity') return;
  req.resume();
  throw new HttpError(415, 'E_CONTENT_ENCODING', `request bodies are not decompressed; content-encoding ${JSON.stringify(enc.slice(0, 64))} is not accepted`, 'send the body uncompressed, without a content-encoding header', undefined, { 'accept-encoding': 'identity' });
}

/** The exact bytes, or HttpError 413 E_BODY_TOO_LARGE (400 E_BODY_ABORTED when the client hung up mid-body, 415 E_CONTENT_ENCODING when compressed). */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  try {
    refuseContentEncoding(req);
  } catch (err) {
    return Promise.reject(err);
  }
  // Already here: no promise chained for errors that cannot happen (most bodies).
  const arrived = arrivedBody(req, limit);
  if (arrived) return Promise.resolve(arrived);
  return readRequestBody(req, limit).catch((err: unknown) => {
    if (err instanceof BodyTooLargeError) throw new HttpError(413, BODY_TOO_LARGE, `request body is larger than the limit of ${limit} bytes`, 'send a smaller body');
    // The client's doing, not the server's: never an internal error (each one is a log line).
    if ((err as NodeJS.ErrnoException | undefined)?.code === 'ECONNRESET') throw new HttpError(400, 'E_BODY_ABORTED', 'the client closed the connection before the body ended');
    throw err;
  });
}

/** `application/json` or any `+json` media type (RFC 6839), parameters ignored. */
export function isJsonContentType(value: string | undefined): boolean {
  if (!value) return false;
  // The usual values, without splitting or a regular expression.
  if (value === 'application/json' || value === 'application/json; charset=utf-8') return true;
  const type = value.split(';')[0].trim().toLowerCase();
  return type === 'application/json' || /^application\/[a-z0-9.+-]+\+json$/.test(type);
}

/**
 * Bodies up to this size are parsed first and their depth checked on the parsed value (a walk
 * over its objects and arrays, about 12 µs for a 28 KB Shopify order, against about 200 µs for
 * scanning its text); larger ones are scanned before parsing. Parsing deep nesting costs about
 * ten times more per byte than ordinary JSON, so the size bounds what a hostile body costs
 * before it is refused (a few ms at 64 KB; 200 ms for 1 MB of `[`).
 */
export const PARSE_FIRST_MAX_BYTES = 64 * 1024;

/**
 * Parses JSON bytes; 400 E_BAD_JSON when they are not JSON, 400 E_JSON_TOO_DEEP when they nest
 * deeper than `maxDepth` (a deep document would otherwise be stored, then break every reader
 * of it). An empty body is `undefined`.
 */
export function parseJson(body: Buffer, maxDepth = JSON_MAX_DEPTH): unknown {
  if (body.length === 0) return undefined;
  const text = body.toString('utf8');
  const parseFirst = body.length <= PARSE_FIRST_MAX_BYTES;
  if (!parseFirst && jsonTooDeep(text, maxDepth)) throw tooDeep(maxDepth);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    // The same answer either way: too deep wins over invalid.
    if (parseFirst && jsonTooDeep(text, maxDepth)) throw tooDeep(maxDepth);
    throw new HttpError(400, 'E_BAD_JSON', `request body is not valid JSON: ${(err as Error).message}`, 'send a JSON document');
  }
  // One walk of the value: nesting past maxDepth (a large body's text was checked first, so
  // the walk is bounded), and a number JSON.parse read as Infinity (`1e309`), which passes a
  // schema's `type: integer, minimum: 1` and is then stored as null.
  const problem = valueProblem(value, maxDepth);
  if (problem === 'deep') throw tooDeep(maxDepth);
  if (problem === 'overflow') throw overflow();
  return value;
}

function overflow(): HttpError {
  return new HttpError(400, 'E_BAD_JSON', 'request body holds a number too large to represent (over 1.8e308)', 'send the number as a string, or a smaller one');
}

function tooDeep(maxDepth: number): HttpError {
  return new HttpError(400, 'E_JSON_TOO_DEEP', `the JSON body nests deeper than ${maxDepth} levels`, `flatten the document (alloy accepts at most ${maxDepth} levels of objects and arrays)`, {
    maxDepth,
  });
}

/** 415 unless the request says its body is JSON. */
export function requireJsonContentType(req: IncomingMessage): void {
  if (!isJsonContentType(req.headers['content-type'])) {
    throw new HttpError(415, 'E_UNSUPPORTED_MEDIA_TYPE', `expected content-type application/json, got ${req.headers['content-type'] ?? 'none'}`, 'send the body as JSON with `content-type: application/json`');
  }
}

/** A JSON body (415 without a JSON content type when there is a body, 413 over the limit, 400 when not JSON). */
export function readJsonBody(req: IncomingMessage, limit: number): Promise<unknown> {
  let arrived: Buffer | undefined;
  try {
    refuseContentEncoding(req);
    arrived = arrivedBody(req, limit);
    // Already here (most bodies): parsed now, with no promise chain through readBody.
    if (arrived) return Promise.resolve(jsonBody(req, arrived));
  } catch (err) {
    return Promise.reject(err);
  }
  return readBody(req, limit).then((raw) => jsonBody(req, raw));
}

function jsonBody(req: IncomingMessage, raw: Buffer): unknown {
  if (raw.length > 0) requireJsonContentType(req);
  return parseJson(raw);
}
