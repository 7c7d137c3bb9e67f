import test from 'ava';
import { hostAliases, qualifyHost } from '../../control-plane/model/hosts.js';

test('short names resolve in the namespace of the resource', (t) => {
  t.is(qualifyHost('reviews', 'default'), 'reviews.default.svc.cluster.local');
  t.is(qualifyHost('reviews.other', 'default'), 'reviews.other.svc.cluster.local');
  t.is(qualifyHost('reviews.other.svc', 'default'), 'reviews.other.svc.cluster.local');
  t.is(qualifyHost('reviews.other.svc.cluster.local', 'default'), 'reviews.other.svc.cluster.local');
  t.is(qualifyHost('Reviews.Other.svc.cluster.local.', 'default'), 'reviews.other.svc.cluster.local');
  t.is(qualifyHost('api.example.com', 'default'), 'api.example.com');
  t.is(qualifyHost('*.example.com', 'default'), '*.example.com');
  t.is(qualifyHost('reviews', 'default', 'corp.local'), 'reviews.default.svc.corp.local');
});

test('a bare name is an alias only inside the service namespace', (t) => {
  t.deepEqual(hostAliases('reviews', 'default', 'default'), [
    'reviews.default.svc.cluster.local',
    'reviews.default.svc',
    'reviews.default',
    'reviews',
  ]);
  t.deepEqual(hostAliases('reviews', 'default', 'other'), [
    'reviews.default.svc.cluster.local',
    'reviews.default.svc',
    'reviews.default',
  ]);
});
