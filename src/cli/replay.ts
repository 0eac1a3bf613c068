/**
 * `tickcast replay`: serves a recorded range of market history to an instance's gateway as the
 * adapter of feed `replay`, so clients see a past session over the ordinary client protocol.
 * It runs the adapter role (roles/adapter.ts, or nats-adapter.ts on a NATS bus) with the replay
 * adapter in place of the simulator: found through the registry (or --bus and --control),
 * registered over the control protocol, routed for the simulated brokers' users (or --brokers).
 * Exits 0 when the range is exhausted (unless --loop), 1 when the range holds no ticks, 2 on
 * bad usage.
 */
import type { Command } from 'commander';
import { isRealBroker } from '../brokers.js';
import { systemClock } from '../clock.js';
import { TickcastError } from '../errors.js';
import { streamKey } from '../feed.js';
import { type DayProblem, type HistoryLocation, type TickQuery } from '../history/store.js';
import { openHistoryStore } from '../history/open-store.js';
import type { AdapterOptions, RunningAdapter } from '../roles/adapter.js';
import { tolerateClosedStdio } from '../observability/closed-output.js';
import { createLogger } from '../observability/logger.js';
import { REPLAY_FEED, ReplayAdapter } from '../adapters/replay/replay-adapter.js';
import { type Parsed, iso, parseList, parseMaxGap, parseRange, parseSpeed, parseStreams, survey, systemScheduler } from '../adapters/replay/replay-source.js';
import { historyLocation } from '../wiring.js';
import { AdapterStop, checkFeedId, gatewayTarget, runAdapterRole } from './adapter.js';
import { addConfigFlags, EXIT_FAILURE, EXIT_OK, type Io, UsageError } from './common.js';

const REPLAY_FLAGS = [
  'envFile', 'instance', 'dataDir', 'controlKeyFile', 'history.url', 'registry.url', 'registry.ttlMs', 'simulator.brokers',
  'bus.natsCredsFile', 'bus.natsNkeySeedFile', 'bus.natsTokenFile', 'bus.natsCaFile', 'bus.natsCertFile', 'bus.natsKeyFile', 'logLevel',
];

const BROKER_NAME = /^[a-z0-9_-]+$/;

function check<T>(parsed: Parsed<T>): T {
  if (!parsed.ok) throw new UsageError(parsed.message);
  return parsed.value;
}

/** Broker names whose users the replay serves: simulated ones only (a real broker's users never get past prices as live). */
function replayBrokers(text: string): string[] {
  const names = check(parseList('--brokers', text.toLowerCase()));
  const bad = names.filter((name) => !BROKER_NAME.test(name));
  if (bad.length > 0) throw new UsageError(`--brokers ${bad.map((name) => JSON.stringify(name)).join(', ')}: expected broker names (letters, digits, _ and -)`);
  const real = names.filter(isRealBroker);
  if (real.length > 0) {
    throw new UsageError(`--brokers ${real.join(', ')}: ${real.length === 1 ? 'is a real broker' : 'are real brokers'}, whose users get ticks only from their own live feed, never a replay`);
  }
  return names;
}

export function registerReplayCommand(program: Command, io: Io, setExit: (code: number) => void): void {
  addConfigFlags(
    program
      .command('replay')
      .description("Replay recorded market history to an instance's gateway as the adapter of feed \"replay\" (docs/history.md, Replay)")
      .requiredOption('--from <time>', 'start of the range: an ISO 8601 date (a whole UTC day), a date and time with a zone (2024-01-02T09:15:00+05:30) or epoch ms')
      .option('--to <time>', 'end of the range (exclusive; a date includes that day); default with a --from date: that day')
      .option('--speed <n|max>', 'recorded pace multiplier (1 real time, 10 ten times faster) or max (as fast as the bus takes them)', '1')
      .option('--max-gap <seconds|none>', 'a quiet spell in the recording longer than this (a night, a weekend) is replayed as this long, before the speed applies; none keeps every gap', '300')
      .option('--streams <list>', 'only these streams: EXCHANGE:SYMBOL[,…] (default: every recorded stream)')
      .option('--feeds <list>', 'only ticks recorded from these feeds, e.g. simulator,zerodha.alice (default: every feed)')
      .option('--brokers <list>', "brokers whose users the replay serves (default: the simulated brokers, TICKCAST_SIM_BROKERS, as `tickcast adapter`)")
      .option('--feed-id <id>', 'feed id of the replay, unique within the instance', REPLAY_FEED)
      .option('--history-dir <dir>', "the SQLite history store to read (default: TICKCAST_HISTORY_URL's database when set, else TICKCAST_HISTORY_DIR, else `history` in the instance's data directory)")
      .option('--loop', 'start the range again when it is exhausted, until stopped')
      .option('--settle <seconds>', 'begin once subscriptions have been quiet this long after the first one', '0.5')
      .option('--bus <endpoint>', "the gateway's bus endpoint, instead of looking it up in the registry; nats://HOST:PORT[,…] serves every gateway node of the instance over NATS [TICKCAST_BUS]")
      .option('--control <endpoint>', "the gateway's control endpoint, instead of looking it up in the registry")
      .option('--wait <seconds>', 'give up if no gateway appears within this many seconds (default: wait)')
      .action(async (flags: Record<string, unknown>) => {
        const target = gatewayTarget(flags);
        const { config, nats } = target;

        const range = check(parseRange(String(flags.from), flags.to === undefined ? undefined : String(flags.to)));
        const speed = check(parseSpeed(String(flags.speed)));
        const maxGapMs = check(parseMaxGap(String(flags.maxGap)));
        const streams = flags.streams === undefined ? undefined : check(parseStreams(String(flags.streams)));
        const feeds = flags.feeds === undefined ? undefined : check(parseList('--feeds', String(flags.feeds)));
        const brokers = flags.brokers === undefined ? [...config.simulator.brokers] : replayBrokers(String(flags.brokers));
        const feedId = checkFeedId(String(flags.feedId));
        const settleSeconds = Number(flags.settle);
        if (!(settleSeconds >= 0) || !Number.isFinite(settleSeconds)) throw new UsageError(`--settle "${String(flags.settle)}" is not valid: expected a number of seconds, 0 or more`);

        tolerateClosedStdio();
        const logger = createLogger(config.logLevel, process.stderr);
        const location: HistoryLocation = flags.historyDir === undefined ? historyLocation(config) : { kind: 'sqlite', dir: String(flags.historyDir) };
        const store = await openHistoryStore(location, { readonly: true });
        const query: TickQuery = { from: range.from, to: range.to, ...(streams ? { streams } : {}), ...(feeds ? { feeds } : {}) };
        // A damaged day is said once on stderr and named in the finished status; the other days play.
        const problems = new Map<string, string>();
        const onProblem = ({ day, message }: DayProblem): void => {
          if (problems.has(day)) return;
          problems.set(day, message);
          io.err(`tickcast: replay: ${message}; replaying the other days\n`);
        };
        const recorded = survey(await store.streams(query, onProblem), streamKey);
        const rangeText = `from ${iso(range.from)} to ${iso(range.to)}${streams ? ` for ${streams.map((s) => `${s.exchange}:${s.symbol}`).join(',')}` : ''}${feeds ? ` from feed ${feeds.join(',')}` : ''}`;
        if (recorded.ticks === 0) {
          const days = (await store.days()).map((d) => d.day);
          await store.close();
          const held = days.length === 0 ? 'it holds no days' : `it holds ${days.length === 1 ? 'the day' : 'the days'} ${summarizeDays(days)}`;
          io.err(`tickcast: no ticks recorded ${rangeText} in the history store ${store.where}: ${held}\n`);
          setExit(EXIT_FAILURE);
          return;
        }
        const multiFeed = [...recorded.streams.values()].filter((s) => s.feeds.size > 1);
        if (multiFeed.length > 0) {
          logger.warn(
            { streams: multiFeed.slice(0, 10).map((s) => `${s.exchange}:${s.symbol} (${[...s.feeds].join(', ')})`), count: multiFeed.length },
            'some streams were recorded from more than one feed: their ticks are replayed together; choose one with --feeds',
          );
        }

        let replay: ReplayAdapter | undefined;
        const stop = new AdapterStop();
        const common: AdapterOptions = {
          config,
          feedId,
          clock: systemClock,
          logger,
          brokers,
          onRefused: stop.onRefused,
          serve: async (publisher, teardown) => {
            teardown.add(() => publisher.close());
            replay = new ReplayAdapter({
              feed: feedId,
              broker: brokers[0]!,
              publisher,
              read: () => store.read(query, onProblem),
              recorded,
              range,
              speed,
              maxGapMs,
              scheduler: systemScheduler,
              logger: logger.child({ feed: feedId }),
              settleMs: settleSeconds * 1000,
              loop: flags.loop === true,
              problems: () => [...problems].map(([day, message]) => `${day} (${message})`),
            });
            await replay.start();
            teardown.add(() => replay!.stop());
            return replay;
          },
        };
        let adapter: RunningAdapter;
        try {
          adapter = await runAdapterRole(common, target);
        } catch (error) {
          await store.close();
          // The usual refusal: the gateway's own simulator serves these brokers. Say how to share.
          if (error instanceof TickcastError && /is already served by feed/.test(error.message)) {
            throw new TickcastError(error.code, `${error.message}; run the gateway with --feed none (or other --sim-brokers), or give the replay brokers of its own with --brokers`);
          }
          throw error;
        }
        io.out(
          `tickcast: replay "${feedId}" is running for instance "${config.instance}"\n` +
            `  Range      ${rangeText}: ${recorded.ticks} ticks of ${recorded.streams.size} streams, ${iso(recorded.first!)} to ${iso(recorded.last!)}\n` +
            `  Speed      ${speed === 'max' ? 'max' : `${speed}x`}${flags.loop === true ? ', looping' : ''}${speed !== 'max' && Number.isFinite(maxGapMs) ? `, quiet spells over ${maxGapMs / 1000} s shortened to it` : ''}\n` +
            `  Brokers    ${brokers.join(', ')}\n` +
            `  Bus        ${adapter.bus}${nats ? '  (NATS)' : ''}\n  Control    ${adapter.control}\n` +
            `  It begins when a client subscribes to a recorded stream.\n`,
        );
        logger.info({ instance: config.instance, feed: feedId }, 'replay started');

        const outcome = await stop.until(replay!.finished);
        await adapter.stop();
        await store.close();
        if (stop.refused) {
          io.err(`tickcast: the gateway refused this replay: ${stop.refused}\n`);
          setExit(EXIT_FAILURE);
          return;
        }
        if (outcome) io.out(`tickcast: ${outcome.message}\n`);
        setExit(EXIT_OK);
      }),
    REPLAY_FLAGS,
  );
}

/** `2024-01-01, 2024-01-02, …, 2024-03-01` (the first three and the last when there are many). */
function summarizeDays(days: readonly string[]): string {
  if (days.length <= 6) return days.join(', ');
  return `${days.slice(0, 3).join(', ')}, … ${days.at(-1)} (${days.length} days)`;
}
