using System.Security.Claims;
using System.Text;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;

namespace Billing.Client.Hosting;

/// <summary>JWT settings (configuration section <c>Auth</c>; the key from <c>Auth:SigningKey</c> / <c>Auth__SigningKey</c>).</summary>
public sealed class AuthOptions
{
    public const string Section = "Auth";
    public const int MinimumKeyBytes = 32;

    public string? SigningKey { get; set; }

    public string Issuer { get; set; } = "billing";

    public string Audience { get; set; } = "billing-api";

    public int ClockSkewSeconds { get; set; } = 30;

    public SymmetricSecurityKey CreateSecurityKey() => new(Encoding.UTF8.GetBytes(SigningKey ?? ""));
}

/// <summary>The claims and roles of API.md.</summary>
public static class BillingClaims
{
    public const string Subject = "sub";
    public const string Role = "role";
    public const string AdminRole = "admin";
    public const string ServiceRole = "service";

    /// <summary>Policy: role service or admin.</summary>
    public const string ServicePolicy = "service";

    /// <summary>Policy: role admin.</summary>
    public const string AdminPolicy = "admin";

    public static bool IsService(this ClaimsPrincipal user) => user.IsInRole(ServiceRole) || user.IsInRole(AdminRole);

    /// <summary>The caller's user id from <c>sub</c>, when it is a UUID.</summary>
    public static Guid? SubjectId(this ClaimsPrincipal user) =>
        Guid.TryParse(user.FindFirstValue(Subject), out var id) ? id : null;
}

public static class AuthSetup
{
    /// <summary>
    /// Bearer JWTs: HS256 only, issuer <c>billing</c>, audience <c>billing-api</c>, <c>exp</c> required with a small
    /// clock skew. A missing or short key fails start-up (Development has a default key in appsettings.Development.json).
    /// </summary>
    public static WebApplicationBuilder AddBillingAuth(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<AuthOptions>()
            .BindConfiguration(AuthOptions.Section)
            .Validate(o => !string.IsNullOrWhiteSpace(o.SigningKey),
                "Auth:SigningKey is not set. Set it in configuration or as the environment variable Auth__SigningKey " +
                "(at least 32 bytes); only the Development environment has a default key.")
            .Validate(o => string.IsNullOrWhiteSpace(o.SigningKey) || Encoding.UTF8.GetByteCount(o.SigningKey) >= AuthOptions.MinimumKeyBytes,
                $"Auth:SigningKey must be at least {AuthOptions.MinimumKeyBytes} bytes long for HS256.")
            .Validate(o => !string.IsNullOrWhiteSpace(o.Issuer) && !string.IsNullOrWhiteSpace(o.Audience), "Auth:Issuer and Auth:Audience must not be empty.")
            .Validate(o => o.ClockSkewSeconds is >= 0 and <= 300, "Auth:ClockSkewSeconds must be between 0 and 300.")
            .ValidateOnStart();

        builder.Services.AddAuthentication(JwtBearerDefaults.AuthenticationScheme).AddJwtBearer();
        // The scheme keeps JwtBearer's options and challenge; its handler first asks the cache of validated tokens.
        builder.Services.TryAddTransient<CachedJwtBearerHandler>();
        builder.Services.Configure<AuthenticationOptions>(o => o.SchemeMap[JwtBearerDefaults.AuthenticationScheme].HandlerType = typeof(CachedJwtBearerHandler));
        builder.Services.AddOptions<JwtBearerOptions>(JwtBearerDefaults.AuthenticationScheme)
            .Configure<IOptions<AuthOptions>, IServiceProvider>((jwt, authOptions, services) =>
            {
                var auth = authOptions.Value;
                jwt.MapInboundClaims = false;
                jwt.TokenHandlers.Clear();
                jwt.TokenHandlers.Add(new CachingJsonWebTokenHandler(services.GetService<TimeProvider>() ?? TimeProvider.System));
                jwt.RequireHttpsMetadata = false;
                jwt.IncludeErrorDetails = false;
                jwt.TokenValidationParameters = new TokenValidationParameters
                {
                    ValidateIssuer = true,
                    ValidIssuer = auth.Issuer,
                    ValidateAudience = true,
                    ValidAudience = auth.Audience,
                    ValidateLifetime = true,
                    RequireExpirationTime = true,
                    RequireSignedTokens = true,
                    ValidateIssuerSigningKey = true,
                    IssuerSigningKey = auth.CreateSecurityKey(),
                    ValidAlgorithms = [SecurityAlgorithms.HmacSha256],
                    ClockSkew = TimeSpan.FromSeconds(auth.ClockSkewSeconds),
                    NameClaimType = BillingClaims.Subject,
                    RoleClaimType = BillingClaims.Role,
                };
            });

        // 401/403 say why (missing or rejected token, which role); the problem body itself comes from UseStatusCodePages.
        builder.Services.AddSingleton<Microsoft.AspNetCore.Authorization.IAuthorizationMiddlewareResultHandler, StatusProblems.AuthorizationResultHandler>();
        builder.Services.AddAuthorizationBuilder()
            .AddPolicy(BillingClaims.ServicePolicy, p => p.RequireAuthenticatedUser().RequireRole(BillingClaims.ServiceRole, BillingClaims.AdminRole))
            .AddPolicy(BillingClaims.AdminPolicy, p => p.RequireAuthenticatedUser().RequireRole(BillingClaims.AdminRole))
            .SetFallbackPolicy(new Microsoft.AspNetCore.Authorization.AuthorizationPolicyBuilder().RequireAuthenticatedUser().Build());
        return builder;
    }
}
