// Named API tokens (/users/{user}/keys/tokens) and deleting any key of a user.
import { randomBytes } from "node:crypto";
import { z } from "zod";
import { formatDuration, type APIKey, type GenerateAPIKeyResponse } from "../../codersdk/index.js";
import { isUniqueViolation } from "../../database/index.js";
import { generateApiKey } from "../auth/api-key.js";
import type { Ctx } from "../context.js";
import * as convert from "../convert.js";
import { authorizeAction, authorizeObject } from "../httpapi/authz.js";
import { ConflictError, NotFoundError, ValidationFailedError } from "../httpapi/errors.js";
import type { Router } from "../httpapi/route.js";
import { parseInput } from "../httpapi/validate.js";
import { loadUser } from "./users.js";

const tokenName = z
  .string()
  .min(1, "must not be empty")
  .max(64, "must be at most 64 characters")
  .regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/, "may contain only letters, digits, '.', '_' and '-', starting with a letter or digit");

const createToken = z.object({
  token_name: tokenName.optional(),
  lifetime_seconds: z.number().int("must be a whole number of seconds").positive("must be positive").optional(),
  scope: z.enum(["all"]).optional(),
});

type UserParams = { user: string };

export function register(r: Router, ctx: Ctx): void {
  r.add({
    method: "POST",
    url: "/api/v2/users/:user/keys/tokens",
    auth: "user",
    handler: async (req, reply): Promise<GenerateAPIKeyResponse> => {
      const owner = await loadUser(ctx, req, (req.params as UserParams).user);
      // The user is visible to the caller by now, so a refusal is a 403, not a 404.
      authorizeAction(req, "create", { type: "api_key", ownerId: owner.id });
      const body = parseInput(createToken, req.body);
      const maxSeconds = Math.floor(ctx.maxTokenLifetimeMs / 1000);
      const lifetime = body.lifetime_seconds ?? maxSeconds;
      if (lifetime > maxSeconds) {
        throw new ValidationFailedError([
          { field: "lifetime_seconds", detail: `must be at most ${maxSeconds} (${formatDuration(ctx.maxTokenLifetimeMs)}, the deployment's maximum token lifetime)` },
        ]);
      }
      const key = generateApiKey();
      try {
        await ctx.store.insertApiKey({
          id: key.id,
          hashed_secret: key.hashedSecret,
          user_id: owner.id,
          login_type: "token",
          token_name: body.token_name ?? `token-${randomBytes(4).toString("hex")}`,
          scope: body.scope ?? "all",
          lifetime_seconds: lifetime,
          expires_at: new Date(Date.now() + lifetime * 1000),
        });
      } catch (err) {
        if (isUniqueViolation(err, "api_keys_user_token_name")) {
          throw new ConflictError(`A token named "${body.token_name}" already exists.`, undefined, [{ field: "token_name", detail: "is already in use" }]);
        }
        throw err;
      }
      req.log.info({ user_id: owner.id, key_id: key.id }, "API token created");
      reply.code(201);
      return { key: key.token };
    },
  });

  r.add({
    method: "GET",
    url: "/api/v2/users/:user/keys/tokens",
    auth: "user",
    handler: async (req): Promise<APIKey[]> => {
      const owner = await loadUser(ctx, req, (req.params as UserParams).user);
      authorizeObject(req, "read", { type: "api_key", ownerId: owner.id });
      return (await ctx.store.listTokensByUser(owner.id)).map(convert.apiKey);
    },
  });

  r.add({
    method: "GET",
    url: "/api/v2/users/:user/keys/tokens/:name",
    auth: "user",
    handler: async (req): Promise<APIKey> => {
      const params = req.params as UserParams & { name: string };
      const owner = await loadUser(ctx, req, params.user);
      authorizeObject(req, "read", { type: "api_key", ownerId: owner.id });
      const key = await ctx.store.getApiKeyByName(owner.id, params.name);
      if (!key) throw new NotFoundError(`No token named "${params.name}".`);
      return convert.apiKey(key);
    },
  });

  r.add({
    method: "DELETE",
    url: "/api/v2/users/:user/keys/:id",
    auth: "user",
    handler: async (req, reply) => {
      const params = req.params as UserParams & { id: string };
      const owner = await loadUser(ctx, req, params.user);
      const key = await ctx.store.getApiKeyById(params.id);
      if (!key || key.user_id !== owner.id) throw new NotFoundError();
      authorizeObject(req, "delete", { type: "api_key", id: key.id, ownerId: owner.id });
      await ctx.store.deleteApiKey(key.id);
      await ctx.authCache.invalidateUser(owner.id);
      req.log.info({ user_id: owner.id, key_id: key.id }, "API key deleted");
      reply.code(204);
    },
  });
}
