using System.Net.Http.Headers;
using System.Net.Http.Json;

namespace Billing.Cluster.Tests.Infrastructure;

/// <summary>Something that records usage the way an agent's back end would.</summary>
public interface IUsageDriver
{
    string Name { get; }

    /// <summary>True when the usage was acknowledged as charged; false with the reason otherwise.</summary>
    Task<(bool Charged, string? Error)> RecordAsync(AiUsage usage);
}

/// <summary>Records usage through an Orleans client (IUsageGrain).</summary>
public sealed class OrleansUsageDriver(IClusterClient client, string name) : IUsageDriver
{
    public string Name => name;

    public async Task<(bool Charged, string? Error)> RecordAsync(AiUsage usage)
    {
        try
        {
            var result = await client.GetGrain<IUsageGrain>(0).RecordAiUsage(usage);
            return result.IsOk ? (true, null) : (false, $"{result.Problem!.Status}: {result.Problem.Detail}");
        }
        catch (Exception e)
        {
            return (false, $"{e.GetType().Name}: {e.Message}");
        }
    }
}

/// <summary>Records usage through the HTTP gateway: POST /v1/usage with a service token.</summary>
public sealed class HttpUsageDriver(Uri gateway, string serviceToken) : IUsageDriver
{
    private readonly HttpClient http = new() { BaseAddress = gateway, Timeout = TimeSpan.FromSeconds(20) };

    public string Name => $"HTTP gateway {gateway}";

    public async Task<(bool Charged, string? Error)> RecordAsync(AiUsage usage)
    {
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/usage")
            {
                Content = JsonContent.Create(new
                {
                    projectId = usage.ProjectId,
                    userId = usage.UserId,
                    modelId = usage.ModelId,
                    inputTokens = usage.InputTokens,
                    outputTokens = usage.OutputTokens,
                    usageId = usage.UsageId,
                }),
            };
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", serviceToken);
            using var response = await http.SendAsync(request);
            if (response.IsSuccessStatusCode) return (true, null);
            return (false, $"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        }
        catch (Exception e)
        {
            return (false, $"{e.GetType().Name}: {e.Message}");
        }
    }
}
