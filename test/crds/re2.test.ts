// The RE2 check (crds/re2.ts): verdicts as Envoy's RE2 gives them, and the bounded verdict cache.
import test from 'ava';
import { RE2_CACHE_SIZE, re2CacheSize, re2Error } from '../../crds/re2.js';

test('RE2 syntax as Envoy reads it: named groups both ways, no duplicate names, no JavaScript-only escapes', (t) => {
  t.is(re2Error('^/api/v[0-9]+/(?P<id>[a-z]+)$'), undefined);
  t.is(re2Error('^/api/v[0-9]+/(?<id>[a-z]+)$'), undefined, '(?<name>…) is accepted, as newer RE2 does');
  t.is(re2Error('(?P<x>a)(?P<x>b)'), 'duplicate capture group name: x');
  t.is(re2Error('(?<x>a)(?<x>b)'), 'duplicate capture group name: x');
  t.is(re2Error('(?<=a)b'), 'invalid perl operator: (?<', 'lookbehind is not a named group');
  t.is(re2Error('\\u0041'), 'invalid escape sequence: \\u', 'RE2 has no \\u escape (JavaScript has)');
  t.is(re2Error('\\x{41}/a'), undefined, 'RE2 hex escapes and a plain /');
  t.is(re2Error('\\(?<x'), undefined, 'an escaped ( does not open a group: (?< is not read as a named group here');
  t.is(re2Error('a(b'), 'missing ): a(b');
});

test('verdicts are cached by pattern text, the least recently used dropped beyond the bound', (t) => {
  const first = 'keep-(a|b)+';
  t.is(re2Error(first), undefined);
  const bad = 'bad-(a';
  t.is(re2Error(bad), 'missing ): bad-(a');
  for (let i = 0; i < RE2_CACHE_SIZE + 200; i++) {
    if (i % 100 === 0) {
      // Used again and again: it stays; the verdicts are the same from the cache.
      t.is(re2Error(first), undefined);
      t.is(re2Error(bad), 'missing ): bad-(a');
    }
    t.is(re2Error(`p${i}-(x|y)+`), undefined);
  }
  t.is(re2CacheSize(), RE2_CACHE_SIZE);
  t.is(re2Error(first), undefined);
  t.is(re2Error(bad), 'missing ): bad-(a');
  t.is(re2CacheSize(), RE2_CACHE_SIZE, 'hits do not grow the cache');
});
