import { describe, expect, test } from 'vitest';
import { age, bar, cell, fitColumns } from '../../src/tui/layout.js';
import { LogBuffer } from '../../src/tui/log-buffer.js';
import { TASK_COLUMNS } from '../../src/tui/components/TasksTable.js';

describe('layout', () => {
  test('fitColumns drops low-priority columns first, then shrinks flexible ones, never exceeds the width', () => {
    for (const w of [40, 60, 80, 100, 160, 240]) {
      const widths = fitColumns(TASK_COLUMNS, w);
      const used = widths.filter((x) => x > 0).reduce((s, x) => s + x + 1, -1);
      expect(used).toBeLessThanOrEqual(w);
      expect(widths[0]).toBeGreaterThan(0); // TASK always shows
      expect(widths[5]).toBeGreaterThan(0); // STATE always shows
    }
    const at80 = fitColumns(TASK_COLUMNS, 80);
    expect(at80[2]).toBe(0); // PROJECT goes first
    expect(fitColumns(TASK_COLUMNS, 240).every((x) => x > 0)).toBe(true);
  });
  test('cell, bar, age', () => {
    expect(cell('abcdef', 4)).toBe('abc…');
    expect(cell('ab', 4, 'right')).toBe('  ab');
    expect(bar(0.5, 4)).toBe('██░░');
    expect(bar(2, 3, true)).toBe('###');
    expect(age('2026-01-01T00:00:00Z', Date.parse('2026-01-01T00:02:05Z'))).toBe('2m');
    expect(age(undefined, 0)).toBe('-');
  });
  test('LogBuffer keeps the last lines and strips escape sequences', () => {
    const b = new LogBuffer(2);
    b.push('one\ntw');
    b.push('o\n\u001b[31mred\u001b[0m\tx\npart');
    expect(b.lines()).toEqual(['two', 'red  x', 'part']);
  });
});
