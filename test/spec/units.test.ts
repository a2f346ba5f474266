import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DURATION_PATTERN, MEM_PATTERN, parseDuration, parseMem, parseSize, SpecValueError } from '../../src/spec/index.js';
import { formatDuration } from '../../src/spec/units.js';

const Ki = 1024;
const Mi = Ki * 1024;
const Gi = Mi * 1024;

describe('parseMem', () => {
  it.each<[string | number, number]>([
    ['256Mi', 256 * Mi],
    ['512M', 512e6],
    ['2Gi', 2 * Gi],
    ['1Ti', 1024 * Gi],
    ['1Pi', 2 ** 50],
    ['1.5Gi', 1.5 * Gi],
    ['1000', 1000],
    [1000, 1000],
    ['4k', 4000],
    ['4K', 4000],
    ['4Ki', 4096],
    ['2G', 2e9],
    ['3T', 3e12],
    ['1P', 1e15],
    [' 64Mi ', 64 * Mi],
    ['1 Gi', Gi],
    [1.5, 2],
  ])('parseMem(%j) = %d', (input, bytes) => {
    expect(parseMem(input)).toBe(bytes);
  });

  it.each<[string | number, RegExp]>([
    ['2Gb', /unknown unit 'Gb' in '2Gb' \(use Ki, Mi, Gi, Ti or K, M, G, T\)/],
    ['2GB', /unknown unit 'GB'/],
    ['2mi', /unknown unit 'mi'/],
    ['-1Gi', /must not be negative/],
    [-5, /must not be negative/],
    [0, /greater than zero/],
    ['0Mi', /greater than zero/],
    [NaN, /not a finite number/],
    [Infinity, /not a finite number/],
    ['abc', /invalid size 'abc'/],
    ['', /invalid size ''/],
    ['10000Pi', /too large/],
    [2 ** 53 + 2, /too large/],
  ])('parseMem(%j) throws %s', (input, re) => {
    expect(() => parseMem(input)).toThrow(SpecValueError);
    expect(() => parseMem(input)).toThrow(re);
  });

  it('prefixes the message with where', () => {
    expect(() => parseMem('2Gb', 'resources.mem')).toThrow("resources.mem: unknown unit 'Gb' in '2Gb'");
  });

  it('parseSize allows zero when asked', () => {
    expect(parseSize(0, undefined, { allowZero: true })).toBe(0);
  });

  it('round-trips any whole number of Mi', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 30 }), (n) => {
        expect(parseMem(`${n}Mi`)).toBe(n * Mi);
        expect(parseMem(String(n))).toBe(n);
      }),
    );
  });

  it('MEM_PATTERN (the JSON Schema pattern) agrees on typical strings', () => {
    const re = new RegExp(MEM_PATTERN);
    for (const ok of ['256Mi', '1.5Gi', '1000', '2G', '4k']) expect(re.test(ok)).toBe(true);
    for (const bad of ['2Gb', '-1Gi', 'abc', '1 GiB']) expect(re.test(bad)).toBe(false);
  });
});

describe('parseDuration', () => {
  it.each<[string | number, number]>([
    ['10s', 10_000],
    ['500ms', 500],
    ['2m', 120_000],
    ['1h', 3_600_000],
    ['1h30m', 5_400_000],
    ['1.5s', 1500],
    ['1d', 86_400_000],
    [10, 10_000],
    [0.25, 250],
    ['30', 30_000],
    ['0s', 0],
  ])('parseDuration(%j) = %d ms', (input, ms) => {
    expect(parseDuration(input)).toBe(ms);
  });

  it.each<[string | number, RegExp]>([
    ['10 parsecs', /invalid duration/],
    ['10x', /invalid duration/],
    ['', /invalid duration/],
    ['s', /invalid duration/],
    [-1, /must not be negative/],
    ['400d', /too long/],
    [NaN, /invalid duration/],
  ])('parseDuration(%j) throws %s', (input, re) => {
    expect(() => parseDuration(input)).toThrow(re);
  });

  it('DURATION_PATTERN agrees on typical strings', () => {
    const re = new RegExp(DURATION_PATTERN);
    for (const ok of ['10s', '500ms', '1h30m', '30']) expect(re.test(ok)).toBe(true);
    for (const bad of ['10 parsecs', '10x', '']) expect(re.test(bad)).toBe(false);
  });
});

describe('formatDuration', () => {
  it('says a duration as a plan would, and parseDuration reads it back', () => {
    expect([800, 8000, 90_000, 300_000, 7_200_000, 5_400_000].map(formatDuration)).toEqual(['800ms', '8s', '1m30s', '5m', '2h', '1h30m']);
    fc.assert(fc.property(fc.integer({ min: 0, max: 10_000_000 }), (s) => parseDuration(formatDuration(s * 1000)) === s * 1000));
  });
});
