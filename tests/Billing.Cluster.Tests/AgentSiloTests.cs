using System.Text.Json;
using Billing.Agents;
using Npgsql;

namespace Billing.Cluster.Tests;

/// <summary>A billing silo (console metrics exporter on) and an agent silo in one cluster.</summary>
public sealed class AgentClusterFixture : IAsyncLifetime
{
    public ProcessCluster Cluster { get; private set; } = null!;

    public SiloProcess BillingSilo { get; private set; } = null!;

    public SiloProcess AgentSilo { get; private set; } = null!;

    /// <summary>A client of the billing silo's gateway.</summary>
    public IClusterClient Client { get; private set; } = null!;

    /// <summary>
    /// A client of the agent silo's gateway: a gateway deserialises the calls it forwards, so calls to agent
    /// grains go through a silo that has the agent's assembly.
    /// </summary>
    public IClusterClient AgentClient { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Cluster = await ProcessCluster.CreateAsync("agent");
        BillingSilo = Cluster.StartSilo("billing-silo", new Dictionary<string, string?>
        {
            ["Metrics__Console"] = "true",
            ["Metrics__ExportIntervalSeconds"] = "1",
        });
        await ProcessCluster.WaitReadyAsync(BillingSilo);
        AgentSilo = Cluster.StartAgentSilo("agent-silo");
        await Cluster.WaitActiveAsync(TimeSpan.FromSeconds(60), BillingSilo.SiloPort, AgentSilo.SiloPort);
        Client = await Cluster.ConnectAsync(BillingSilo.GatewayPort);
        AgentClient = await Cluster.ConnectAsync(AgentSilo.GatewayPort);

        // The client learns the agent silo's grain classes from the cluster manifest, which follows membership
        // by a moment: wait until an agent grain can be called.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            try
            {
                await AgentClient.GetGrain<IAgentGrain>(Guid.NewGuid()).GetSilo();
                break;
            }
            catch (Exception e) when (e is ArgumentException or TypeLoadException && DateTime.UtcNow < deadline)
            {
                await Task.Delay(250);
            }
        }
    }

    public async Task DisposeAsync() => await Cluster.DisposeAsync();
}

public sealed class AgentSiloTests(AgentClusterFixture fixture, ITestOutputHelper output) : IClassFixture<AgentClusterFixture>
{
    [Fact]
    public async Task Agent_grain_is_charged_through_IUsageGrain_and_no_billing_grain_activates_on_the_agent_silo()
    {
        var client = fixture.Client;
        var model = await BillingAccounts.CreateModelAsync(client);
        var accounts = new List<BillingAccounts>();
        for (var i = 0; i < 6; i++) accounts.Add(await BillingAccounts.CreateAsync(client, model));

        // Several agents and accounts, so that billing grains would have had every chance to land on the agent silo.
        var charged = new List<Guid>();
        for (var i = 0; i < 12; i++)
        {
            var agent = fixture.AgentClient.GetGrain<IAgentGrain>(Guid.NewGuid());
            var usage = accounts[i % accounts.Count].Usage();
            var result = await agent.RunStep(usage);
            Assert.True(result.IsOk, result.Problem?.Detail);
            Assert.Equal(0.012207m, result.Value!.Cost);
            Assert.Equal(PayingAccount.Project, result.Value.DeductedFrom);
            Assert.Contains($":{fixture.AgentSilo.SiloPort}:", await agent.GetSilo());
            charged.Add(usage.UsageId);
        }

        await Ledger.AssertAcknowledgedUsagesChargedOnceAsync(fixture.Cluster.ConnectionString, charged);
        await Ledger.AssertBalancesEqualHistoryAsync(fixture.Cluster.ConnectionString,
            accounts.Select(a => a.UserId).ToArray(), accounts.Select(a => a.ProjectId).ToArray());

        // Where the activations are, per silo, as the management grain sees them.
        var management = client.GetGrain<IManagementGrain>(0);
        var hosts = await management.GetHosts(onlyActive: true);
        var agentSilo = hosts.Keys.Single(s => s.Endpoint.Port == fixture.AgentSilo.SiloPort);
        var billingSilo = hosts.Keys.Single(s => s.Endpoint.Port == fixture.BillingSilo.SiloPort);
        var onAgent = await management.GetSimpleGrainStatistics([agentSilo]);
        var onBilling = await management.GetSimpleGrainStatistics([billingSilo]);
        output.WriteLine("agent silo: " + string.Join(", ", onAgent.Select(s => $"{s.GrainType}×{s.ActivationCount}")));
        output.WriteLine("billing silo: " + string.Join(", ", onBilling.Select(s => $"{s.GrainType}×{s.ActivationCount}")));

        Assert.Contains(onAgent, s => s.GrainType.Contains("AgentGrain") && s.ActivationCount > 0);
        Assert.DoesNotContain(onAgent, s => IsBillingGrain(s.GrainType));
        Assert.Contains(onBilling, s => s.GrainType.Contains("UsageGrain"));
        Assert.Contains(onBilling, s => s.GrainType.Contains("ProjectGrain"));
        Assert.DoesNotContain(onBilling, s => s.GrainType.Contains("AgentGrain"));

        var detailed = await management.GetDetailedGrainStatistics(null, [agentSilo]);
        Assert.DoesNotContain(detailed, s => IsBillingGrain(s.GrainType));
        foreach (var account in accounts)
        {
            Assert.Equal(billingSilo, await management.GetActivationAddress(client.GetGrain<IProjectGrain>(account.ProjectId)));
        }
    }

    [Fact]
    public async Task ReviewDefect07_AgentSiloGrainCanRecordUsageButNeverCreditOrCharge()
    {
        var client = fixture.Client;
        var accounts = await BillingAccounts.CreateAsync(client);
        var user = client.GetGrain<IUserGrain>(accounts.UserId);
        var project = client.GetGrain<IProjectGrain>(accounts.ProjectId);
        var userBefore = (await user.GetAccount()).Value!;
        var projectBefore = (await project.GetAccount()).Value!;
        var userHistoryBefore = (await user.GetHistory(new HistoryQuery(100, null))).Value!.Items;
        var projectHistoryBefore = (await project.GetHistory(new HistoryQuery(100, null))).Value!.Items;

        // The agent grain runs on the agent silo (a process without the billing assembly) and calls the account
        // grains on the billing silo directly, as itself.
        var agent = fixture.AgentClient.GetGrain<IAgentGrain>(Guid.NewGuid());
        Assert.Contains($":{fixture.AgentSilo.SiloPort}:", await agent.GetSilo());

        // (a) Credits.
        var userCredit = new AccountCredit(1_000m, HistoryReasons.PromotionalCredit, Guid.NewGuid());
        var projectCredit = new AccountCredit(1_000m, HistoryReasons.TopUp, Guid.NewGuid());
        Assert.Equal(BillingStatus.Forbidden, (await agent.TryCreditUser(accounts.UserId, userCredit)).Problem?.Status);
        Assert.Equal(BillingStatus.Forbidden, (await agent.TryCreditProject(accounts.ProjectId, projectCredit)).Problem?.Status);

        // (b) Charges that skip IUsageGrain: well-formed ones, a negative one (free quota on a pro account), a fallback marker.
        var projectCharge = new AccountCharge(Guid.NewGuid(), HistoryReasons.AiUsage, 1m, "USD", accounts.ModelId, 1, 1, accounts.UserId);
        var userCharge = new AccountCharge(Guid.NewGuid(), HistoryReasons.AiUsagePersonal, 1m, "USD", accounts.ModelId, 1, 1, null);
        var negativeCharge = userCharge with { UsageId = Guid.NewGuid(), Cost = -5m };
        Assert.Equal(BillingStatus.Forbidden, (await agent.TryChargeProject(accounts.ProjectId, projectCharge)).Problem?.Status);
        Assert.Equal(BillingStatus.Forbidden, (await agent.TryChargeUser(accounts.UserId, userCharge)).Problem?.Status);
        Assert.Equal(BillingStatus.Forbidden, (await agent.TryChargeUser(accounts.UserId, negativeCharge)).Problem?.Status);
        var fallbackReceipt = new UsageReceipt(Guid.NewGuid(), 1m, "USD", 1, 1, PayingAccount.User, accounts.UserId, 9m, 0m);
        await Assert.ThrowsAsync<BillingOperationFailedException>(() =>
            agent.TryRecordUserFallback(accounts.ProjectId, fallbackReceipt, accounts.ModelId));

        // (c) Plan changes, and minting a new account with its signup credit.
        Assert.Equal(BillingStatus.Forbidden, (await agent.TryChangeUserPlan(accounts.UserId, new PlanChange(true, 1_000m))).Problem?.Status);
        Assert.Equal(BillingStatus.Forbidden, (await agent.TryChangeProjectPlan(accounts.ProjectId, new PlanChange(true, 1_000m))).Problem?.Status);
        var mintedUser = Guid.NewGuid();
        Assert.Equal(BillingStatus.Forbidden, (await agent.TryInitializeUser(mintedUser)).Problem?.Status);

        // Nothing changed: the accounts (balance, plan, quota, version) and their histories, as the grains see them…
        Assert.Equal(userBefore, (await user.GetAccount()).Value);
        Assert.Equal(projectBefore, (await project.GetAccount()).Value);
        Assert.Equal(userHistoryBefore.Select(ByValue), (await user.GetHistory(new HistoryQuery(100, null))).Value!.Items.Select(ByValue));
        Assert.Equal(projectHistoryBefore.Select(ByValue), (await project.GetHistory(new HistoryQuery(100, null))).Value!.Items.Select(ByValue));
        Assert.Equal(BillingStatus.AccountNotFound, (await client.GetGrain<IUserGrain>(mintedUser).GetAccount()).Problem?.Status);

        // …and as the database has them: no row for any refused id, no account minted.
        Guid[] refusedIds = [userCredit.CreditId!.Value, projectCredit.CreditId!.Value, projectCharge.UsageId, userCharge.UsageId,
            negativeCharge.UsageId, fallbackReceipt.UsageId];
        await using (var connection = new NpgsqlConnection(fixture.Cluster.ConnectionString))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand("""
                SELECT (SELECT count(*) FROM user_billing_history WHERE usage_id = ANY(@ids) OR credit_id = ANY(@ids))
                     + (SELECT count(*) FROM project_billing_history WHERE usage_id = ANY(@ids) OR credit_id = ANY(@ids))
                     + (SELECT count(*) FROM usage_record WHERE usage_id = ANY(@ids))
                     + (SELECT count(*) FROM user_billing WHERE "user" = @minted)
                """, connection);
            command.Parameters.AddWithValue("ids", refusedIds);
            command.Parameters.AddWithValue("minted", mintedUser);
            Assert.Equal(0L, (long)(await command.ExecuteScalarAsync())!);
        }

        // (d) The legitimate way: the agent's usage through IUsageGrain is charged once, to the project, retries included.
        var usage = accounts.Usage();
        var receipt = await agent.RunStep(usage);
        Assert.True(receipt.IsOk, receipt.Problem?.Detail);
        Assert.Equal(PayingAccount.Project, receipt.Value!.DeductedFrom);
        Assert.Equal(0.012207m, receipt.Value.Cost);
        var retried = await agent.RunStep(usage);
        Assert.Equal(receipt.Value, retried.Value);

        var projectAfter = (await project.GetAccount()).Value!;
        Assert.Equal(projectBefore.Balance - 0.012207m, projectAfter.Balance);
        Assert.Equal(projectBefore.Version + 1, projectAfter.Version);
        Assert.Equal(userBefore, (await user.GetAccount()).Value);
        await Ledger.AssertAcknowledgedUsagesChargedOnceAsync(fixture.Cluster.ConnectionString, [usage.UsageId]);
        await Ledger.AssertBalancesEqualHistoryAsync(fixture.Cluster.ConnectionString, [accounts.UserId], [accounts.ProjectId]);
    }

    [Fact]
    public async Task Dashboard_serves_its_page_and_its_data_lists_the_billing_grain_types()
    {
        var http = ProcessCluster.Http;
        var page = await http.GetStringAsync(fixture.BillingSilo.Http);
        Assert.Contains("<title>Orleans Dashboard</title>", page);

        var types = JsonSerializer.Deserialize<string[]>(await http.GetStringAsync(new Uri(fixture.BillingSilo.Http, "/GrainTypes")))!;
        output.WriteLine(string.Join(", ", types.Where(t => t.StartsWith("Billing"))));
        foreach (var grain in new[] { "UsageGrain", "ProjectGrain", "UserGrain", "ModelPricingGrain" })
        {
            Assert.Contains(types, t => t.StartsWith("Billing.") && t.EndsWith("." + grain));
        }

        // The counters (what the dashboard's pages show): the silos of the cluster, both of them.
        string?[] hosts = [];
        for (var attempt = 0; attempt < 60; attempt++)
        {
            using var counters = JsonDocument.Parse(await http.GetStringAsync(new Uri(fixture.BillingSilo.Http, "/DashboardCounters")));
            hosts = counters.RootElement.GetProperty("hosts").EnumerateArray().Select(h => h.GetProperty("siloAddress").GetString()).ToArray();
            if (hosts.Length >= 2) break;
            await Task.Delay(250);
        }

        Assert.Contains(hosts, h => h!.Contains($":{fixture.BillingSilo.SiloPort}"));
        Assert.Contains(hosts, h => h!.Contains($":{fixture.AgentSilo.SiloPort}"));
    }

    [Fact]
    public async Task Billing_meter_is_exported_by_the_console_exporter()
    {
        var accounts = await BillingAccounts.CreateAsync(fixture.Client);
        var result = await fixture.Client.GetGrain<IUsageGrain>(0).RecordAiUsage(accounts.Usage());
        Assert.True(result.IsOk, result.Problem?.Detail);
        await fixture.BillingSilo.Process.WaitForOutputAsync("Metric Name: billing.usage.recorded", TimeSpan.FromSeconds(15));
        await fixture.BillingSilo.Process.WaitForOutputAsync("Metric Name: billing.deduction.duration", TimeSpan.FromSeconds(15));
        await fixture.BillingSilo.Process.WaitForOutputAsync("Metric Name: billing.group_commit.batch_size", TimeSpan.FromSeconds(15));
        // OpenTelemetry exports instruments of long, int, short, byte, double and float only: a Counter<decimal>
        // is silently dropped. The cost counter must be a Counter<double> (an observation, not a money path).
        var exception = await Record.ExceptionAsync(() =>
            fixture.BillingSilo.Process.WaitForOutputAsync("Metric Name: billing.cost.charged", TimeSpan.FromSeconds(5)));
        Assert.True(exception is null,
            "billing.cost.charged is not exported: OpenTelemetry drops Counter<decimal>; it is a Counter<long> of billionths in BillingMetrics.");
    }

    private static bool IsBillingGrain(string grainType) =>
        grainType.StartsWith("Billing.", StringComparison.Ordinal) && !grainType.StartsWith("Billing.Agents.", StringComparison.Ordinal);

    [Fact]
    public async Task Silo_start_on_a_migrated_database_applies_no_schema_file_twice()
    {
        await using var connection = new NpgsqlConnection(fixture.Cluster.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT count(*), count(DISTINCT name) FROM billing_schema_migrations", connection);
        await using var reader = await command.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        Assert.Equal(reader.GetInt64(0), reader.GetInt64(1));
        Assert.Equal(Billing.Storage.SchemaMigrator.Files.Count, reader.GetInt64(0));
    }

    /// <summary>A history row compared by value: a record compares its <c>Grants</c> array by reference, so by its draws here.</summary>
    private static (HistoryEntry Row, string Grants) ByValue(HistoryEntry row) => (row with { Grants = null }, string.Join(";", row.Grants ?? []));
}
