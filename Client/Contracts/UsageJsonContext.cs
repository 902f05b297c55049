using System.Text.Json.Serialization;

namespace Billing.Client.Contracts;

/// <summary>
/// Source-generated JSON metadata of the usage routes' bodies (the gateway's hot path): their readers and writers are
/// compiled instead of built by reflection and emitted IL at run time. Only metadata: the naming policy, number
/// handling, depth, duplicate-property and enum rules still come from the gateway's JsonSerializerOptions
/// (<see cref="Hosting.ServerDefaults.ConfigureJson"/>), which put this first in their resolver chain; every other
/// type is still resolved by reflection.
/// </summary>
[JsonSerializable(typeof(AiUsageRequest))]
[JsonSerializable(typeof(PersonalUsageRequest))]
[JsonSerializable(typeof(BalanceCheckRequest))]
[JsonSerializable(typeof(UsageResponse))]
[JsonSerializable(typeof(BalanceCheckResponse))]
internal sealed partial class UsageJsonContext : JsonSerializerContext;
