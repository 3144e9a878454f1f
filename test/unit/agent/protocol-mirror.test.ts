import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { generateProtocol, PROTO_H, PROTOCOL_TS } from '../../../scripts/generate-protocol.js';
import { MsgType, PROTO_MAX_BYTES, RespType, STATS_FIELDS, SubRun } from '../../../src/agent/protocol.js';

const protoH = readFileSync(PROTO_H, 'utf8');

describe('src/agent/protocol.ts mirrors runtime/include/proto.h', () => {
  it('is exactly what scripts/generate-protocol.ts makes of proto.h (run `npm run generate:protocol` after changing proto.h)', () => {
    expect(readFileSync(PROTOCOL_TS, 'utf8')).toBe(generateProtocol(protoH));
  });

  it('carries proto.h\'s numbers (a spot check of the generator itself)', () => {
    expect(MsgType.QUIT).toBe(1);
    expect(MsgType.CLOCK).toBe(71);
    expect(SubRun.PTY).toBe(64);
    expect(RespType.OK_BYTES).toBe(2);
    expect(RespType.NOTIFY_EXEC_FAILED).toBe(66);
    expect(PROTO_MAX_BYTES).toBe(16 * 1024 * 1024);
    expect(STATS_FIELDS[0]).toBe('upperTotalBytes');
  });

  it('follows a changed number, a new member and a new limit in proto.h', () => {
    const changed = protoH
      .replace('MSG_CLOCK = 71,', 'MSG_CLOCK = 72,')
      .replace('EXEC_STEP_EXECVE = 4 }', 'EXEC_STEP_EXECVE = 4, EXEC_STEP_CAPS = 5 }')
      .replace('#endif', '#define PROTO_MAX_THINGS 12u /* new */\n#endif');
    const generated = generateProtocol(changed);
    expect(generated).toContain('  CLOCK: 72,');
    expect(generated).toContain('  CAPS: 5,');
    expect(generated).toMatch(/\/\*\* new \*\/\nexport const PROTO_MAX_THINGS = 12;/);
  });

  it('refuses what it cannot mirror instead of leaving it out', () => {
    const refuses = (text: string): string => {
      try {
        generateProtocol(text);
        return 'generated';
      } catch (error) {
        return (error as Error).message;
      }
    };
    expect(refuses(protoH.replace('#endif', 'enum sub_new { SUB_NEW_X = 1 };\n#endif'))).toMatch(/enum sub_new has no TypeScript name/);
    expect(refuses(protoH.replace('#endif', '#define PROTO_TIMER_MS (HZ / 10)\n#endif'))).toMatch(/PROTO_TIMER_MS .* is not a number/);
    expect(refuses(protoH.replace('#endif', 'static const int x = 1;\n#endif'))).toMatch(/unexpected 'static'/);
    expect(refuses(protoH.replace('uint64_t uptime_ms;', 'uint32_t uptime_ms;'))).toMatch(/only uint64_t fields/);
    expect(refuses(protoH.replace('#define PROTO_STATS_FIELDS 6', '#define PROTO_STATS_FIELDS 7'))).toMatch(/PROTO_STATS_FIELDS is 7 but the struct has 6 fields/);
  });
});
