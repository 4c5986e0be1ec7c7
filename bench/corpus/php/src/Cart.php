<?php
declare(strict_types=1);

namespace App;

final class Cart
{
    public function addItem(int $productId, int $qty): array
    {
        return ['product' => $productId, 'qty' => $qty];
    }

    public function addFromRequest(array $params): array
    {
        return $this->addItem($params['product'], (int) $params['qty']);
    }
}
