// The `q` parameter of list routes: free words plus key:value filters, e.g. "status:active alice".
import { ValidationFailedError } from "./errors.js";

export interface SearchTerms {
  words: string[];
  filters: Array<{ key: string; value: string }>;
}

export function splitSearch(q: string | undefined): SearchTerms {
  const terms: SearchTerms = { words: [], filters: [] };
  for (const term of (q ?? "").trim().split(/\s+/).filter(Boolean)) {
    const colon = term.indexOf(":");
    if (colon < 0) terms.words.push(term);
    else terms.filters.push({ key: term.slice(0, colon).toLowerCase(), value: term.slice(colon + 1) });
  }
  return terms;
}

/** A 400 for the search string, naming the field "q". */
export const searchError = (detail: string) => new ValidationFailedError([{ field: "q", detail }], "Invalid search query.");
