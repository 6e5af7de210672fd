// First-user setup, password login and logout.
import { randomUUID } from "node:crypto";
import { z } from "zod";
import { SESSION_TOKEN_COOKIE, type CreateFirstUserResponse, type LoginWithPasswordResponse } from "../../codersdk/index.js";
import type { Store, User } from "../../database/index.js";
import { generateApiKey } from "../auth/api-key.js";
import { burnPasswordCheck, hashPassword, verifyPassword } from "../auth/password.js";
import type { Ctx } from "../context.js";
import { requireAuth } from "../httpapi/authenticate.js";
import { sessionCookie } from "../httpapi/cookies.js";
import { ConflictError, NotFoundError, UnauthorizedError } from "../httpapi/errors.js";
import type { Router } from "../httpapi/route.js";
import { parseInput } from "../httpapi/validate.js";
import * as s from "./schemas.js";

const FIRST_USER_LOCK = 0x66697273; // "firs"

const createFirstUser = z.object({
  email: s.email,
  username: s.username,
  name: s.displayName.optional(),
  password: s.password,
});

const login = z.object({ email: z.string().min(1, "is required"), password: z.string().min(1, "is required").max(256) });

export async function createSession(ctx: Ctx, store: Store, user: User): Promise<{ token: string; maxAgeSeconds: number }> {
  const key = generateApiKey();
  const lifetime = Math.floor(ctx.sessionDurationMs / 1000);
  await store.insertApiKey({
    id: key.id,
    hashed_secret: key.hashedSecret,
    user_id: user.id,
    login_type: "password",
    lifetime_seconds: lifetime,
    expires_at: new Date(Date.now() + lifetime * 1000),
  });
  return { token: key.token, maxAgeSeconds: lifetime };
}

function secureCookie(ctx: Ctx): boolean {
  return ctx.secureAuthCookie || ctx.accessUrl.startsWith("https:");
}

export function register(r: Router, ctx: Ctx): void {
  r.add({
    method: "GET",
    url: "/api/v2/users/first",
    auth: "public",
    handler: async () => {
      if ((await ctx.store.countUsers()) === 0) throw new NotFoundError("The initial user has not been created.");
      return { message: "The initial user has already been created." };
    },
  });

  r.add({
    method: "POST",
    url: "/api/v2/users/first",
    auth: "public",
    handler: async (req, reply): Promise<CreateFirstUserResponse> => {
      const body = parseInput(createFirstUser, req.body);
      const hashed = await hashPassword(body.password);
      const result = await ctx.store.inTx(async (tx) => {
        await tx.advisoryXactLock(FIRST_USER_LOCK);
        if ((await tx.countUsers()) > 0) throw new ConflictError("The initial user has already been created.");
        const org =
          (await tx.getDefaultOrganization()) ??
          (await tx.insertOrganization({ id: randomUUID(), name: "coder", display_name: "Coder", is_default: true }));
        const user = await tx.insertUser({
          id: randomUUID(),
          email: body.email,
          username: body.username,
          name: body.name ?? "",
          hashed_password: hashed,
          login_type: "password",
          rbac_roles: ["owner"],
        });
        await tx.insertOrganizationMember({ organization_id: org.id, user_id: user.id, roles: ["organization-admin"] });
        return { user_id: user.id, organization_id: org.id };
      });
      req.log.info({ user_id: result.user_id }, "first user created");
      reply.code(201);
      return result;
    },
  });

  r.add({
    method: "POST",
    url: "/api/v2/users/login",
    auth: "public",
    handler: async (req, reply): Promise<LoginWithPasswordResponse> => {
      const body = parseInput(login, req.body);
      const user = await ctx.store.getUserByEmail(body.email);
      const invalid = new UnauthorizedError("Incorrect email or password.");
      if (!user?.hashed_password || user.login_type !== "password") {
        await burnPasswordCheck(body.password);
        throw invalid;
      }
      if (!(await verifyPassword(body.password, user.hashed_password))) throw invalid;
      if (user.status !== "active") {
        throw new UnauthorizedError("Your account is suspended.", "Contact an administrator to reactivate your account.");
      }
      const session = await createSession(ctx, ctx.store, user);
      reply.header("set-cookie", sessionCookie(SESSION_TOKEN_COOKIE, session.token, { secure: secureCookie(ctx), maxAgeSeconds: session.maxAgeSeconds }));
      reply.code(201);
      return { session_token: session.token };
    },
  });

  r.add({
    method: "POST",
    url: "/api/v2/users/logout",
    auth: "user",
    handler: async (req, reply) => {
      const { key } = requireAuth(req);
      await ctx.store.deleteApiKey(key.id);
      await ctx.authCache.invalidateUser(key.user_id);
      reply.header("set-cookie", sessionCookie(SESSION_TOKEN_COOKIE, "", { secure: secureCookie(ctx), maxAgeSeconds: 0 }));
      return { message: "Logged out." };
    },
  });
}
