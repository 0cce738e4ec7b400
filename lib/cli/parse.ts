/**
 * Option value parsers for commander. They throw InvalidArgumentError, which commander reports as
 * "option '--epochs <n>' argument 'abc' is invalid. <why>", so every message names the option.
 */
import { InvalidArgumentError } from 'commander';

const INTEGER = /^[+-]?\d+$/;
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** Parser of an integer in [min, max]. */
export function integer(min: number, max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value: string) => {
    const v = Number(value.trim());
    if (!INTEGER.test(value.trim()) || !Number.isSafeInteger(v) || v < min || v > max) {
      throw new InvalidArgumentError(`Expected an integer in [${min}, ${max}].`);
    }
    return v;
  };
}

/** Parser of an output file name with the extension of what is written into it (e.g. ".png"). */
export function fileWithExtension(extension: string): (value: string) => string {
  return (value: string) => {
    if (!value.toLowerCase().endsWith(extension) || value.length === extension.length) {
      throw new InvalidArgumentError(`Expected a file name ending in ${extension} (the command writes ${extension.slice(1).toUpperCase()}).`);
    }
    return value;
  };
}

/** Parser of a finite number; `exclusiveMin` rejects min itself (e.g. a learning rate of 0). */
export function number(min: number, max: number, exclusiveMin = false): (value: string) => number {
  return (value: string) => {
    const v = Number(value.trim());
    if (!NUMBER.test(value.trim()) || !Number.isFinite(v) || v > max || (exclusiveMin ? v <= min : v < min)) {
      throw new InvalidArgumentError(`Expected a number ${exclusiveMin ? '>' : '>='} ${min} and <= ${max}.`);
    }
    return v;
  };
}

/** Parser of a comma-separated list of positive integers such as "400,400". */
export function integerList(min: number, max: number): (value: string) => number[] {
  const one = integer(min, max);
  return (value: string) => {
    const parts = value.split(',');
    try {
      return parts.map((p) => one(p));
    } catch {
      throw new InvalidArgumentError(`Expected comma-separated integers in [${min}, ${max}], such as 400,200.`);
    }
  };
}

/** Parser of one of a fixed set of words. */
export function choice<T extends string>(choices: readonly T[]): (value: string) => T {
  return (value: string) => {
    if (!(choices as readonly string[]).includes(value)) throw new InvalidArgumentError(`Expected one of ${choices.join(', ')}.`);
    return value as T;
  };
}

/** Parser of a comma-separated list of words from a fixed set, without duplicates. */
export function choiceList<T extends string>(choices: readonly T[]): (value: string) => T[] {
  const one = choice(choices);
  return (value: string) => {
    const items = value.split(',').map((s) => s.trim());
    try {
      const parsed = items.map(one);
      if (new Set(parsed).size !== parsed.length) throw new Error('duplicate');
      return parsed;
    } catch {
      throw new InvalidArgumentError(`Expected a comma-separated list of distinct values from ${choices.join(', ')}.`);
    }
  };
}

/** Parser of --scale: 'auto' (uint8 data divided by 255) or a finite multiplier. */
export function scale(value: string): number | 'auto' {
  if (value === 'auto') return 'auto';
  const v = Number(value.trim());
  if (!NUMBER.test(value.trim()) || !Number.isFinite(v)) throw new InvalidArgumentError("Expected a number or 'auto'.");
  return v;
}
