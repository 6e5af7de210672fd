// Template archives: validation on upload (coderd), extraction into a work directory
// (provisioner daemon) and packing a directory (`coder templates push`).
export { ArchiveError } from "./errors.js";
export { DEFAULT_LIMITS, type ArchiveLimits } from "./limits.js";
export { detectFormat, type ArchiveFormat } from "./detect.js";
export { listArchive, type ArchiveEntry } from "./read.js";
export { extractArchive } from "./extract.js";
export { packDirectory, type PackOptions } from "./pack.js";
