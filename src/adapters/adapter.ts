// The feed contract moved to src/feed.ts; kept while the broker adapters still import it here.
export * from '../feed.js';
