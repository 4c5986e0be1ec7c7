<?php
declare(strict_types=1);

namespace App;

final class WebhookController
{
    public function receive(string $body): array
    {
        return json_decode($body, true, 512, JSON_THROW_ON_ERROR);
    }
}
