// Field rules shared by several routes.
import { z } from "zod";

const NAME_RE = /^[a-zA-Z0-9]+(?:-[a-zA-Z0-9]+)*$/;

export const username = z
  .string()
  .min(1, "must not be empty")
  .max(32, "must be at most 32 characters")
  .regex(NAME_RE, "may contain only letters, digits and single hyphens between them")
  .refine((v) => v.toLowerCase() !== "me", "\"me\" is reserved");

export const organizationName = z
  .string()
  .min(1, "must not be empty")
  .max(32, "must be at most 32 characters")
  .regex(NAME_RE, "may contain only letters, digits and single hyphens between them");

export const email = z.string().max(320, "must be at most 320 characters").email("must be a valid email address");
export const password = z.string().min(8, "must be at least 8 characters").max(256, "must be at most 256 characters");
export const displayName = z.string().max(128, "must be at most 128 characters");
export const uuid = z.string().uuid("must be a UUID");

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
