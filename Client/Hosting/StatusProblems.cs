using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Infrastructure;
using Microsoft.AspNetCore.Authorization.Policy;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Options;

namespace Billing.Client.Hosting;

/// <summary>
/// The <c>detail</c> of problems that ASP.NET Core writes itself (through UseStatusCodePages or the exception
/// handler): 401, 403, 404, 405, 413, 415 and whatever else arrives without one. API.md: every error has a detail.
/// Applied by the single CustomizeProblemDetails of <see cref="ServerDefaults"/>, so every problem goes one way.
/// </summary>
internal static class StatusProblems
{
    private const string AuthDetailKey = "Billing.AuthProblemDetail";

    /// <summary>Set by the authorization result handler: why exactly this request got its 401 or 403.</summary>
    public static void SetAuthDetail(HttpContext http, string detail) => http.Items[AuthDetailKey] = detail;

    public static string DetailFor(HttpContext http, int status)
    {
        if (status is StatusCodes.Status401Unauthorized or StatusCodes.Status403Forbidden &&
            http.Items.TryGetValue(AuthDetailKey, out var auth) && auth is string authDetail)
        {
            return authDetail;
        }

        return status switch
        {
            StatusCodes.Status401Unauthorized => "This route needs a valid bearer token (Authorization: Bearer <JWT>).",
            StatusCodes.Status403Forbidden => "This token is not allowed to use this route.",
            StatusCodes.Status404NotFound => $"No route matches {http.Request.Method} {http.Request.Path}; the routes are listed in /openapi/v1.json.",
            StatusCodes.Status405MethodNotAllowed => http.Response.Headers.Allow is { Count: > 0 } allow
                ? $"{http.Request.Path} does not accept {http.Request.Method}; it accepts {string.Join(", ", allow.ToArray())}."
                : $"{http.Request.Path} does not accept {http.Request.Method}.",
            StatusCodes.Status413PayloadTooLarge => MaxBodyBytes(http) is { } max
                ? $"The request body is larger than this gateway accepts ({max} bytes)."
                : "The request body is larger than this gateway accepts.",
            StatusCodes.Status415UnsupportedMediaType => "The request body must be JSON, sent with Content-Type: application/json.",
            _ => $"{(ReasonPhrases.GetReasonPhrase(status) is { Length: > 0 } phrase ? phrase : "Error")} ({status}).",
        };
    }

    /// <summary>
    /// The <c>code</c> of a problem that has none of its own (the ones ASP.NET Core writes, the gateway's 403s): every
    /// problem body has one, so clients can match on it rather than on the title.
    /// </summary>
    public static string CodeFor(int status) => status switch
    {
        StatusCodes.Status400BadRequest => "invalid_input",
        StatusCodes.Status401Unauthorized => "unauthorized",
        StatusCodes.Status403Forbidden => "forbidden",
        StatusCodes.Status404NotFound => "not_found",
        StatusCodes.Status405MethodNotAllowed => "method_not_allowed",
        StatusCodes.Status409Conflict => "conflict",
        StatusCodes.Status413PayloadTooLarge => "body_too_large",
        StatusCodes.Status415UnsupportedMediaType => "unsupported_media_type",
        StatusCodes.Status429TooManyRequests => "too_many_requests",
        StatusCodes.Status500InternalServerError => "internal_error",
        StatusCodes.Status503ServiceUnavailable => "unavailable",
        _ => $"http_{status}",
    };

    private static long? MaxBodyBytes(HttpContext http) =>
        http.Features.Get<IHttpMaxRequestBodySizeFeature>()?.MaxRequestBodySize
        ?? http.RequestServices.GetService<IOptions<HttpApiOptions>>()?.Value.MaxRequestBodyBytes;

    /// <summary>
    /// Records why authorization failed (missing vs. invalid token, which role a route needs) and then lets the
    /// default handler challenge/forbid as usual; the empty 401/403 becomes a problem in UseStatusCodePages.
    /// </summary>
    internal sealed class AuthorizationResultHandler : IAuthorizationMiddlewareResultHandler
    {
        private readonly AuthorizationMiddlewareResultHandler defaultHandler = new();

        public Task HandleAsync(RequestDelegate next, HttpContext context, AuthorizationPolicy policy, PolicyAuthorizationResult authorizeResult)
        {
            if (authorizeResult.Challenged)
            {
                SetAuthDetail(context, string.IsNullOrWhiteSpace(context.Request.Headers.Authorization)
                    ? "This route needs a bearer token: send Authorization: Bearer <JWT>."
                    : "The bearer token was not accepted: it must be an HS256 JWT for this API (issuer and audience), signed with its key and not expired.");
            }
            else if (authorizeResult.Forbidden)
            {
                var roles = authorizeResult.AuthorizationFailure?.FailedRequirements.OfType<RolesAuthorizationRequirement>()
                    .SelectMany(r => r.AllowedRoles).Distinct().ToArray() ?? [];
                SetAuthDetail(context, roles.Length > 0
                    ? $"This route needs a token with the role {string.Join(" or ", roles)}."
                    : "This token is not allowed to use this route.");
            }

            return defaultHandler.HandleAsync(next, context, policy, authorizeResult);
        }
    }
}
