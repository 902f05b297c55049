using Microsoft.AspNetCore.Authorization;
using Microsoft.OpenApi;

namespace Billing.Client.Hosting;

public static class OpenApiSetup
{
    private const string BearerScheme = "Bearer";

    /// <summary>
    /// The OpenAPI document at /openapi/v1.json: every route with its request and response types, money as
    /// <c>number</c>/<c>decimal</c> (exact, never a double), and the bearer scheme on every route that needs a token.
    /// </summary>
    public static WebApplicationBuilder AddBillingOpenApi(this WebApplicationBuilder builder)
    {
        builder.Services.AddOpenApi("v1", options =>
        {
            options.AddDocumentTransformer((document, _, _) =>
            {
                document.Info.Title = "Billing gateway";
                document.Info.Version = "v1";
                document.Info.Description = "Prepaid-credit billing over Orleans: accounts, usage, history, billing errors, pricing. " +
                                            "Money is an exact decimal JSON number; errors are application/problem+json.";
                document.Components ??= new OpenApiComponents();
                document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
                document.Components.SecuritySchemes[BearerScheme] = new OpenApiSecurityScheme
                {
                    Type = SecuritySchemeType.Http,
                    Scheme = "bearer",
                    BearerFormat = "JWT",
                    Description = "HS256 JWT, issuer 'billing', audience 'billing-api'; claims sub (user id) and role (admin | service | absent).",
                };
                return Task.CompletedTask;
            });
            options.AddOperationTransformer((operation, context, _) =>
            {
                if (context.Description.ActionDescriptor.EndpointMetadata.OfType<IAllowAnonymous>().Any()) return Task.CompletedTask;
                operation.Security = [new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(BearerScheme, context.Document)] = [] }];
                operation.Responses ??= new OpenApiResponses();
                operation.Responses.TryAdd("401", new OpenApiResponse { Description = "Missing or invalid token" });
                operation.Responses.TryAdd("403", new OpenApiResponse { Description = "The token's role may not use this route" });
                return Task.CompletedTask;
            });
            options.AddSchemaTransformer((schema, context, _) =>
            {
                var type = Nullable.GetUnderlyingType(context.JsonTypeInfo.Type) ?? context.JsonTypeInfo.Type;
                if (type == typeof(decimal)) schema.Format = "decimal";
                return Task.CompletedTask;
            });
        });
        return builder;
    }
}
